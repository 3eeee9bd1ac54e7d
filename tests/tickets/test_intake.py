"""Intake: one audited, queued command per (source, ticket_id, action); resubmission queues nothing new."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import commands
from shared.errors import GraphPermissionError, GraphUnavailable, TransientError
from shared.tickets import NO_OBJECT_ID, PayloadError, PayloadTooLarge, post_ticket, request_id, ticket_device_ref, ticket_status
from tests.diagnosis.fakes import FakeGraph, device, fixture
from tests.tickets.helpers import ID_KEY, SECRET, encode, make_intake, payload, signed_headers, ticket_records


async def test_accepted_request_is_recorded_then_queued(tmp_path: Path) -> None:
    desk = device("DESKTOP-1")
    intake, sender = make_intake(tmp_path, FakeGraph([desk]))
    result = await intake.submit(encode(payload(user="ana@contoso.com", callback_url="https://hooks.example.com/r")))
    assert not result.duplicate and result.request_id == request_id(ID_KEY, "generic", "INC-1001", "diagnose")
    assert result.status_path == f"/api/tickets/{result.request_id}"
    [message] = sender.sent
    assert message.message_id == result.request_id
    command = commands.decode(message.body)
    assert command.trigger == "ticket" and command.proposed_action == "diagnose" and command.command_id == result.request_id
    assert command.device_object_id == desk.id and command.snapshot == desk
    assert command.ticket.requested_by == "helpdesk@contoso.com" and command.ticket.user == "ana@contoso.com"
    assert command.ticket.request_id == result.request_id and command.run_id.startswith("tickets-")
    [record] = await ticket_records(intake.audit)
    assert record.entry.command_id == result.request_id and record.entry.ticket == "INC-1001"
    assert record.entry.actor == "helpdesk@contoso.com" and record.entry.data["phase"] == "intake"
    status = await ticket_status(intake.audit, result.request_id)
    assert status["state"] == "queued" and status["device"]["id"] == desk.id and status["callback"]["attempts"] == 0


async def test_resubmission_returns_the_same_id_and_queues_nothing_new(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path)
    first = await intake.submit(encode(payload()))
    again = await intake.submit(encode(payload(requested_by="someone.else@contoso.com")))  # same ticket, same action
    other_action = await intake.submit(encode(payload(action="scope_check", user="ana@contoso.com")))
    assert again.request_id == first.request_id and again.duplicate
    assert other_action.request_id != first.request_id and not other_action.duplicate
    assert [m.message_id for m in sender.sent] == [first.request_id, other_action.request_id]
    assert len(await ticket_records(intake.audit)) == 2
    jira = await intake.submit(encode(payload()), source="generic")
    assert jira.request_id == first.request_id  # ticket ids compare case-insensitively, source and action included


async def test_queue_down_is_retryable_and_a_resubmission_queues_it(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path)
    sender.fail = True
    with pytest.raises(TransientError, match="send it again"):
        await intake.submit(encode(payload()))
    status = await ticket_status(intake.audit, request_id(ID_KEY, "generic", "INC-1001", "diagnose"))
    assert status["state"] == "not_queued"
    sender.fail = False
    result = await intake.submit(encode(payload()))
    assert not result.duplicate and len(sender.sent) == 1
    assert (await ticket_status(intake.audit, result.request_id))["state"] == "queued"
    assert (await intake.submit(encode(payload()))).duplicate


@pytest.mark.parametrize(
    ("devices", "ask", "problem"),
    [
        ([], payload(action="disable"), "matches no device in the tenant; disable needs an existing device"),
        ([device("DESKTOP-1"), device("DESKTOP-1")], payload(action="delete"), "matches 2 devices"),
        ([], payload(action="scope_check"), "no owner is known; name the user"),
    ],
)
async def test_device_must_resolve_for_actions_that_need_it(tmp_path: Path, devices, ask, problem: str) -> None:
    intake, sender = make_intake(tmp_path, FakeGraph(devices))
    with pytest.raises(PayloadError) as info:
        await intake.submit(encode(ask))
    assert problem in info.value.problems[0]
    assert sender.sent == [] and await ticket_records(intake.audit) == []


async def test_diagnose_accepts_a_device_with_no_tenant_object(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path, FakeGraph([]))
    await intake.submit(encode(payload(device="DESKTOP-NEW", dsregcmd=fixture("win11_not_joined.txt"))))
    command = commands.decode(sender.sent[0].body)
    assert command.device_object_id == NO_OBJECT_ID and command.snapshot is None
    assert command.display_name == "DESKTOP-NEW" and command.evidence["resolved"] is False
    assert ticket_device_ref(command) == "DESKTOP-NEW"
    assert command.ticket.dsregcmd.startswith("+---")


async def test_duplicate_names_pick_the_object_the_device_reports(tmp_path: Path) -> None:
    old = device("DESKTOP-7QK2M4L", signed_in_days_ago=1)
    current = device("DESKTOP-7QK2M4L", device_id="4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13", signed_in_days_ago=30)
    intake, sender = make_intake(tmp_path, FakeGraph([old, current]))
    await intake.submit(encode(payload(device="DESKTOP-7QK2M4L", dsregcmd=fixture("win11_entra_joined_healthy.txt"))))
    command = commands.decode(sender.sent[0].body)
    assert command.device_object_id == current.id and command.evidence["matches"] == 2


async def test_device_by_id_matches_only_that_object(tmp_path: Path) -> None:
    desk = device("DESKTOP-1")
    intake, sender = make_intake(tmp_path, FakeGraph([desk]))
    await intake.submit(encode(payload(action="disable", device={"deviceId": desk.device_id})))
    assert commands.decode(sender.sent[0].body).device_object_id == desk.id
    with pytest.raises(PayloadError, match="matches no device"):
        await intake.submit(encode(payload(ticket_id="INC-2", action="disable", device={"id": desk.device_id})))


async def test_callback_outside_the_allowlist_is_refused_at_intake(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path, allowlist="hooks.example.com, 127.0.0.1:8443")
    refused = [
        "https://evil.example.net/steal",
        "https://hooks.example.com.evil.net/x",
        "https://169.254.169.254/latest/meta-data",
        "http://127.0.0.1/x",  # listed only with port 8443
        "https://[::1]/x",
        "https://user:pw@hooks.example.com/x",
        "http://hooks.example.com/x",  # plain http to a non-loopback host
        "https://2130706433/x",
        "ftp://hooks.example.com/x",
    ]
    for n, url in enumerate(refused):
        with pytest.raises(PayloadError, match="callback_url"):
            await intake.submit(encode(payload(ticket_id=f"INC-{n}", callback_url=url)))
    assert sender.sent == [] and await ticket_records(intake.audit) == []
    await intake.submit(encode(payload(ticket_id="OK-1", callback_url="https://hooks.example.com/r")))
    await intake.submit(encode(payload(ticket_id="OK-2", callback_url="http://127.0.0.1:8443/r")))
    assert len(sender.sent) == 2


async def test_body_checks(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path)
    with pytest.raises(PayloadTooLarge):
        await intake.submit(b"{" + b" " * (256 * 1024) + b"}")
    for body, message in [
        (b"", "is empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{bad", r"not valid JSON \(line 1, column 2"),
        (b"[" * 100_000, "not valid JSON"),
    ]:
        with pytest.raises(PayloadError, match=message):
            await intake.submit(body)
    assert sender.sent == []


class GraphDown(FakeGraph):
    def __init__(self, error: Exception) -> None:
        super().__init__([])
        self.error = error

    async def find_devices(self, name_or_id: str):
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (GraphUnavailable("Graph is busy", status=503), 503),
        (GraphPermissionError("Device.Read.All is missing", status=403), 500),
    ],
)
async def test_graph_failures_map_to_5xx_and_queue_nothing(tmp_path: Path, error: Exception, status: int) -> None:
    intake, sender = make_intake(tmp_path, GraphDown(error))
    body = encode(payload())
    answer = await post_ticket(body, signed_headers(body), {}, intake=lambda: intake, secret=lambda: SECRET)
    assert answer.status == status and answer.body["error"]
    if status == 503:
        assert answer.headers == {"Retry-After": "30"}
        assert answer.body == {"error": "temporarily unavailable, retry later"}  # Graph's words stay in the log
    assert sender.sent == [] and await ticket_records(intake.audit) == []
