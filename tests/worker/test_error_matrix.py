"""Every error class at every Graph call the worker makes ends in exactly one terminal decision.

The class alone decides (classified once: shared/errors.py, shared/graph/failures.py): a transient error
gives the message back until its last delivery, which records `failed`; a permanent one is `failed` at
once. Errors the worker reads as results (a notice's sendMail, the optional reads of a diagnosis) end in
their own decision, also exactly one. Writes are also failed the way the gateway reports them: as results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from shared.commands import RemediationCommand, TicketRef, encode
from shared.errors import (
    GraphBadRequest,
    GraphError,
    GraphNotFound,
    GraphPermissionDenied,
    GraphThrottled,
    GraphUnavailable,
    TransientError,
)
from shared.policy import Policy
from shared.ports import AuditEntry, Owner
from shared.scope.evaluate import SELECTED
from shared.worker import Handled, Worker
from tests.worker.conftest import decisions_of, enforce, records_of
from tests.worker.fakes import FakeGraph, command, device, tagged

MAX_DELIVERIES = 3
GROUP = "0b0a5c1e-0000-4000-8000-000000000009"
OWNER = Owner("u1", "Ann", "ann@contoso.test", "ann@contoso.test")
ERRORS: tuple[type[GraphError], ...] = (
    GraphThrottled, GraphUnavailable, GraphPermissionDenied, GraphBadRequest, GraphNotFound, GraphError,
)
STATUS = {GraphThrottled: 429, GraphUnavailable: 503, GraphPermissionDenied: 403, GraphBadRequest: 400,
          GraphNotFound: 404, GraphError: None}


class FailingGraph(FakeGraph):
    """The fake tenant, with one of its calls raising an injected error every time it is made."""

    def __init__(self, *devices: Any) -> None:
        super().__init__(*devices)
        self.fail_at: str | None = None
        self.error: Exception | None = None
        self.hits = 0

    def _check(self, name: str) -> None:
        if name == self.fail_at and self.error is not None:
            self.hits += 1
            raise self.error

    async def get_device(self, object_id: str) -> Any:
        self._check("get_device")
        return await super().get_device(object_id)

    async def group_device_ids(self, group_id: str) -> Any:
        self._check("group_device_ids")
        return await super().group_device_ids(group_id)

    async def managed_device_last_sync(self, device_id: str) -> Any:
        self._check("managed_device_last_sync")
        return await super().managed_device_last_sync(device_id)

    async def bitlocker_key_ids(self, device_id: str) -> Any:
        self._check("bitlocker_key_ids")
        return await super().bitlocker_key_ids(device_id)

    async def laps_credential_present(self, device_id: str) -> Any:
        self._check("laps_credential_present")
        return await super().laps_credential_present(device_id)

    async def registered_owners(self, object_id: str) -> Any:
        self._check("registered_owners")
        return await super().registered_owners(object_id)

    async def update_devices(self, changes: Any) -> Any:
        self._check("update_devices")
        return await super().update_devices(changes)

    async def delete_devices(self, object_ids: Any) -> Any:
        self._check("delete_devices")
        return await super().delete_devices(object_ids)

    async def send_mail(self, sender: str, to: Any, subject: str, body_html: str) -> Any:
        self._check("send_mail")
        return await super().send_mail(sender, to, subject, body_html)

    async def get_user(self, user: str) -> Any:
        self._check("get_user")
        return await super().get_user(user)

    async def check_member_groups(self, user_id: str, group_ids: Any) -> Any:
        self._check("check_member_groups")
        return await super().check_member_groups(user_id, group_ids)

    async def device_registration_policy(self) -> Any:
        self._check("device_registration_policy")
        return await super().device_registration_policy()

    async def find_devices(self, name_or_id: str) -> Any:
        self._check("find_devices")
        return await super().find_devices(name_or_id)

    async def user_registered_devices(self, user_id: str) -> Any:
        self._check("user_registered_devices")
        return await super().user_registered_devices(user_id)


@dataclass(frozen=True)
class Scenario:
    graph: FailingGraph
    command: RemediationCommand
    policy: Policy


def _disable() -> Scenario:
    dev = device("w1")
    graph = FailingGraph(dev)
    graph.owners[dev.id] = [OWNER]
    policy = enforce(protect={"groups": [GROUP]}, notify={"admins": ["it@contoso.test"], "digest": False})
    return Scenario(graph, command(dev), policy)


def _delete() -> Scenario:
    dev = tagged("d1", 40)
    return Scenario(FailingGraph(dev), command(dev, device_class="expired_disabled", action="delete"), enforce())


def _onprem_notice() -> Scenario:
    dev = device("h1", trustType="ServerAd", onPremisesSyncEnabled=True, operatingSystemVersion="10.0.19045.0")
    policy = enforce(notify={"admins": ["ad-team@contoso.test"], "digest": False})
    return Scenario(FailingGraph(dev), command(dev), policy)


def _ticket(action: str, **ticket: Any) -> Scenario:
    dev = device("t1")
    graph = FailingGraph(dev)
    graph.owners[dev.id] = [OWNER]
    graph.users[OWNER.id] = OWNER
    graph.user_devices[OWNER.id] = [dev]
    graph.policy = {"userDeviceQuota": 1, "azureADJoin": {"allowedToJoin": {"@odata.type": SELECTED, "users": [],
                                                                            "groups": [GROUP]}}}
    graph.member_of[OWNER.id] = {GROUP}
    ref = TicketRef(source="jira", ticket_id="IT-9", requested_by="helpdesk@contoso.test", **ticket)
    cmd = command(dev, device_class="ticket", action=action, trigger="ticket", snapshot=None, ticket=ref)
    return Scenario(graph, cmd, enforce())


#: (call site, the call that fails, the scenario that makes it, how its errors are read)
#: "raises": the error reaches the worker's one error handler; "mail": the notice of a write is a result and
#: the write stands; "mail_only": a notice-only command fails with its mail; "noted": the diagnosis notes it.
SITES: list[tuple[str, str, Callable[[], Scenario], str]] = [
    ("device re-read", "get_device", _disable, "raises"),
    ("protected groups", "group_device_ids", _disable, "raises"),
    ("Intune record", "managed_device_last_sync", _disable, "raises"),
    ("BitLocker keys", "bitlocker_key_ids", _delete, "raises"),
    ("LAPS password", "laps_credential_present", _delete, "raises"),
    ("owners for the notice", "registered_owners", _disable, "raises"),
    ("disable write", "update_devices", _disable, "raises"),
    ("delete write", "delete_devices", _delete, "raises"),
    ("notice of a write", "send_mail", _disable, "mail"),
    ("on-prem notice", "send_mail", _onprem_notice, "mail_only"),
    ("scope check: first owner", "registered_owners", lambda: _ticket("scope_check"), "raises"),
    ("scope check: user", "get_user", lambda: _ticket("scope_check", user="u1"), "raises"),
    ("scope check: join policy", "device_registration_policy", lambda: _ticket("scope_check", user="u1"), "raises"),
    ("scope check: groups", "check_member_groups", lambda: _ticket("scope_check", user="u1"), "raises"),
    ("scope check: user's devices", "user_registered_devices", lambda: _ticket("scope_check", user="u1"), "raises"),
    ("diagnose: device", "find_devices", lambda: _ticket("diagnose"), "raises"),
    ("diagnose: owner", "registered_owners", lambda: _ticket("diagnose"), "noted"),
    ("diagnose: user", "get_user", lambda: _ticket("diagnose", user="u1"), "noted"),
    ("diagnose: join policy", "device_registration_policy", lambda: _ticket("diagnose"), "noted"),
    ("diagnose: groups", "check_member_groups", lambda: _ticket("diagnose"), "noted"),
    ("diagnose: user's devices", "user_registered_devices", lambda: _ticket("diagnose"), "noted"),
    ("diagnose: Intune record", "managed_device_last_sync", lambda: _ticket("diagnose"), "noted"),
]


async def _deliver(worker: Worker, cmd: RemediationCommand) -> tuple[Handled, int]:
    """Deliver like Service Bus does: again after each retry, up to the last delivery; (how it settled, delivery)."""
    for delivery in range(1, MAX_DELIVERIES + 1):
        try:
            return await worker.handle(encode(cmd), message_id=cmd.command_id, delivery_count=delivery), delivery
        except TransientError:
            assert delivery < MAX_DELIVERIES, "the last delivery must end in a decision, not a retry"
    raise AssertionError("unreachable")


def _worker(make_worker: Callable[..., Worker], s: Scenario) -> Worker:
    return make_worker(s.graph, s.policy, max_deliveries=MAX_DELIVERIES)


@pytest.mark.parametrize("error_class", ERRORS, ids=[e.__name__ for e in ERRORS])
@pytest.mark.parametrize(("site", "call", "scenario", "kind"), SITES, ids=[s[0] for s in SITES])
async def test_every_error_class_at_every_call_ends_in_one_decision(
    make_worker: Callable[..., Worker], audit: Any, site: str, call: str, scenario: Callable[[], Scenario], kind: str,
    error_class: type[GraphError],
) -> None:
    s = scenario()
    s.graph.fail_at, s.graph.error = call, error_class(f"injected at {call}", status=STATUS[error_class])
    handled, delivery = await _deliver(_worker(make_worker, s), s.command)
    [decision] = await decisions_of(audit, s.command.command_id)
    entry = decision.entry
    assert s.graph.hits >= 1, f"{site}: the scenario never made the call"
    assert handled.decision == entry.decision and handled.settle == ("dead_letter" if entry.decision == "failed"
                                                                      else "complete")
    transient = issubclass(error_class, TransientError)
    if kind == "raises":
        assert entry.decision == "failed" and entry.data["error"] == error_class.__name__
        assert f"injected at {call}" in entry.reason
        assert delivery == (MAX_DELIVERIES if transient else 1), "transient: retried to the last; permanent: at once"
        assert entry.reason.startswith("gave up after") is transient
    elif kind == "mail":
        outcome = await _outcome(audit, s.command)
        assert entry.decision == "acted" and delivery == 1 and outcome.data["mail"]["class"] == error_class.__name__
    elif kind == "mail_only":
        assert entry.decision == "failed" and delivery == 1 and entry.reason.startswith("sendMail failed")
        assert s.graph.hits == 1, "a notice is sent at most once"
    else:
        assert entry.decision == "acted" and delivery == 1
        assert f"injected at {call}" in str(entry.data["diagnosis"])
    again = await _worker(make_worker, s).handle(encode(s.command), message_id=s.command.command_id,
                                                 delivery_count=MAX_DELIVERIES + 1)
    assert again.redelivered and len(await decisions_of(audit, s.command.command_id)) == 1


async def _outcome(audit: Any, cmd: RemediationCommand) -> AuditEntry:
    [outcome] = [r.entry for r in await records_of(audit, cmd.command_id) if r.entry.kind == "outcome"]
    return outcome


#: Writes go out in $batch calls and come back as results, one per device, never raised.
WRITE_RESULTS: list[tuple[int, str | None, str]] = [
    (429, None, "retried"), (503, None, "retried"), (0, None, "retried"),
    (403, "Authorization_RequestDenied", "failed"), (400, "Request_BadRequest", "failed"), (409, "Conflict", "failed"),
    (404, None, "gone"),
]


@pytest.mark.parametrize("scenario", [_disable, _delete], ids=["disable", "delete"])
@pytest.mark.parametrize(("status", "code", "expect"), WRITE_RESULTS, ids=[str(w[0]) for w in WRITE_RESULTS])
async def test_every_write_result_ends_in_one_decision(
    make_worker: Callable[..., Worker], audit: Any, scenario: Callable[[], Scenario], status: int, code: str | None,
    expect: str,
) -> None:
    s = scenario()
    s.graph.write_status = status
    handled, delivery = await _deliver(_worker(make_worker, s), s.command)
    [decision] = await decisions_of(audit, s.command.command_id)
    entry = decision.entry
    assert handled.decision == entry.decision
    if expect == "retried":
        assert delivery == MAX_DELIVERIES and entry.decision == "failed"
        assert entry.reason.startswith("gave up after 3 deliveries") and "did not go through" in entry.reason
        assert len(s.graph.writes) == MAX_DELIVERIES, "each delivery found the change not done and tried again"
    elif expect == "failed":
        assert delivery == 1 and entry.decision == "failed" and entry.reason.startswith("Graph refused")
        assert len(s.graph.writes) == 1
    elif s.command.proposed_action == "delete":
        assert entry.decision == "acted" and "already gone" in entry.reason
    else:
        assert entry.decision == "skipped" and "deleted before the write" in entry.reason
    assert s.graph.mails == [] or entry.decision == "acted", "no notice for a write that was not done"


async def test_an_error_of_no_known_class_is_retried_and_decided_on_the_last_delivery(
    make_worker: Callable[..., Worker], audit: Any
) -> None:
    s = _disable()
    s.graph.fail_at, s.graph.error = "get_device", RuntimeError("a bug in a port")
    worker = _worker(make_worker, s)
    for delivery in range(1, MAX_DELIVERIES):
        with pytest.raises(RuntimeError, match="a bug in a port"):  # the message is given back, the bug is logged
            await worker.handle(encode(s.command), message_id=s.command.command_id, delivery_count=delivery)
    handled = await worker.handle(encode(s.command), message_id=s.command.command_id, delivery_count=MAX_DELIVERIES)
    [decision] = await decisions_of(audit, s.command.command_id)
    assert handled.settle == "dead_letter" and decision.entry.decision == "failed"
    assert decision.entry.reason == f"gave up after {MAX_DELIVERIES} deliveries: RuntimeError: a bug in a port"
    assert s.graph.writes == []
