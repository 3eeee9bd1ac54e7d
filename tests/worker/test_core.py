"""The worker's pure core as decision tables: every gate stop, every narrowing, every Graph answer -> decision.

No I/O at all: facts go in, a Stop or an Act (and, for Graph's answers, an Outcome) comes out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.actions import Action
from shared.errors import (
    AuditUnavailable,
    GraphBadRequest,
    GraphNotFound,
    GraphPermissionDenied,
    GraphThrottled,
    GraphUnavailable,
    InvalidCommand,
)
from shared.models import Device
from shared.policy import Policy
from shared.ports import AuditEntry, AuditRecord, GraphResult, Owner
from shared.tags import Tag
from shared.worker import core, records
from shared.worker.core import Act, Facts, Outcome, Results, Stop
from shared.worker.gates import Reservation
from tests.worker.conftest import enforce
from tests.worker.fakes import NON_WINDOWS_PATCH, NOW, command, device, tagged

GROUP = "8d6c9c3e-5a7b-4f1e-9a51-2f0b6f7c1d11"
GRANTED = Reservation(True, 1, 1, 500, 1000)
SAME = object()  # the device now is the scan's snapshot


def facts(dev: Device | None, action: str = "disable", *, snapshot: Any = SAME, current: Any = SAME,
          device_class: str | None = None, **kw: Any) -> Facts:
    """The facts of one command; `dev` is the scan's snapshot and (unless `current` says otherwise) the device now."""
    base = dev if dev is not None else device("gone")
    cls = device_class or {"delete": "expired_disabled", "clear_tag": "reactivated"}.get(action, "stale")
    cmd = command(base, action=action, device_class=cls, snapshot=base if snapshot is SAME else snapshot)
    return Facts(command=cmd, action=Action(action), plan_reason="planned by the test",
                 current=dev if current is SAME else current, **kw)


def delete_facts(dev: Device, **kw: Any) -> Facts:
    """A delete whose delete-gate facts were read and found nothing (override to make one stop it)."""
    kw.setdefault("bitlocker_key_ids", ())
    kw.setdefault("laps_credential", False)
    return facts(dev, "delete", **kw)


def _decided(f: Facts, policy: Policy | None = None) -> Stop | Act:
    return core.decide(f, policy or enforce(), NOW)


def _act(f: Facts, policy: Policy | None = None) -> Act:
    verdict = _decided(f, policy)
    assert isinstance(verdict, Act), verdict
    admitted = core.admit(verdict, GRANTED if core.needs_reservation(verdict) else None, policy or enforce())
    assert isinstance(admitted, Act), admitted
    return admitted


# --------------------------------------------------------------------------- every gate stop

old_tag = Tag("tagged", NOW - timedelta(days=5), "stale", "run-0").render()

GATE_STOPS: list[tuple[str, Facts, Policy | None, str, str, str]] = [
    ("kill switch", facts(device("k"), kill_switch=True), None, "blocked", "kill_switch", "kill switch"),
    ("gone", facts(device("g"), current=None), None, "skipped", "state_unchanged", "no longer exists"),
    ("signed in since the scan",
     facts(device("s"), current=device("s", approximateLastSignInDateTime=(NOW - timedelta(days=1)).isoformat())),
     None, "skipped", "state_unchanged", "signed in since the scan"),
    ("already disabled", facts(device("d", accountEnabled=False)), None, "skipped", "state_unchanged",
     "already disabled"),
    ("no tag to clear", facts(device("c"), "clear_tag"), None, "skipped", "state_unchanged", "no entra-janitor tag"),
    ("foreign tag value", facts(device("f", extensionAttributes={"extensionAttribute15": "CA-Ring1"})), None,
     "blocked", "tag_ownership", 'holds "CA-Ring1"'),
    ("autopilot", facts(device("a", physicalIds=["[ZTDID]:x"])), None, "blocked", "protection", "autopilot"),
    ("protected group", facts(device("p"), protected_ids=frozenset({"p"})), enforce(protect={"groups": [GROUP]}),
     "blocked", "protection", "protected device"),
    ("non-Windows already tagged",
     facts(device("m", operatingSystem="macOS", extensionAttributes={"extensionAttribute15": old_tag})), None,
     "skipped", "platform", "already tagged"),
    ("BitLocker keys", delete_facts(tagged("b", 40), bitlocker_key_ids=("k1",)), None, "blocked", "bitlocker_keys",
     "BitLocker recovery key"),
    ("BitLocker not looked up", delete_facts(tagged("b2", 40), bitlocker_key_ids=None), None, "blocked",
     "bitlocker_keys", "not looked up"),
    ("LAPS password", delete_facts(tagged("l", 40), laps_credential=True), None, "blocked", "laps_password",
     "Windows LAPS password"),
    ("LAPS not looked up", delete_facts(tagged("l2", 40), laps_credential=None), None, "blocked", "laps_password",
     "not looked up"),
    ("recent Intune check-in", facts(device("i"), intune_last_sync=NOW - timedelta(days=3)), None, "blocked",
     "intune_active", "retire it in Intune first"),
    ("grace period running", delete_facts(tagged("gp", 10)), None, "blocked", "grace_period",
     "deletes are allowed after 30 days"),
    ("never disabled by us", delete_facts(device("n")), None, "blocked", "grace_period", "disable it first"),
    ("report-only class", facts(device("r"), "report", device_class="no_signin_record"), None, "skipped",
     "report_only", "report only"),
]


@pytest.mark.parametrize(("case", "f", "policy", "decision", "gate", "words"), GATE_STOPS, ids=[c[0] for c in GATE_STOPS])
def test_every_gate_stop(case: str, f: Facts, policy: Policy | None, decision: str, gate: str, words: str) -> None:
    verdict = _decided(f, policy)
    assert isinstance(verdict, Stop) and not isinstance(verdict, Outcome), case
    assert verdict.decision == decision and words in verdict.reason
    assert verdict.gates[0] == {"name": "plan", "passed": True, "reason": "planned by the test"}
    last = verdict.gates[-1]
    assert last["name"] == gate and last["passed"] is False
    assert verdict.settle == "complete"


# --------------------------------------------------------------------------- budget and mode (after the reservation)


def test_device_writes_need_a_reservation_and_mails_do_not() -> None:
    write = _decided(facts(device("w")))
    hybrid = _decided(facts(device("h", trustType="ServerAd", onPremisesSyncEnabled=True,
                                   operatingSystemVersion="10.0.19045.0")))
    assert isinstance(write, Act) and core.needs_reservation(write)
    assert isinstance(hybrid, Act) and hybrid.action is Action.NOTIFY_ONPREM and not core.needs_reservation(hybrid)


@pytest.mark.parametrize(
    ("reservation", "words"),
    [(None, "no budget reservation"), (Reservation(False, 2, 2, 2, 1000, "run"), "per-run budget of 2"),
     (Reservation(False, 0, 9, 500, 9, "day"), "daily budget of 9")],
)
def test_budget_defers(reservation: Reservation | None, words: str) -> None:
    act = _decided(facts(device("b")))
    assert isinstance(act, Act)
    stop = core.admit(act, reservation, enforce())
    assert isinstance(stop, Stop) and stop.decision == "deferred" and words in stop.reason
    assert stop.gates[-1]["name"] == "budget"


def test_report_mode_is_a_dry_run_with_the_full_plan() -> None:
    f = facts(device("r"), mail_sender="janitor@contoso.test")
    act = _decided(f, Policy())
    assert isinstance(act, Act)
    stop = core.admit(act, GRANTED, Policy())
    assert isinstance(stop, Stop) and stop.decision == "dry_run" and stop.act is not None
    patch, mail = stop.data["planned"]
    assert patch["method"] == "PATCH" and patch["body"]["accountEnabled"] is False
    assert mail == {"method": "POST", "url": "/users/janitor@contoso.test/sendMail", "digest": False}
    assert [g["name"] for g in stop.gates][-2:] == ["budget", "mode"]


def test_enforce_admits() -> None:
    act = _act(facts(device("e")))
    assert [g["name"] for g in act.gates][-2:] == ["budget", "mode"] and all(g["passed"] for g in act.gates)
    [call] = act.calls
    assert call.method == "PATCH" and call.url == "/devices/e" and call.body is not None
    assert call.body["extensionAttributes"]["extensionAttribute15"].startswith("entra-janitor|disabled|")


# --------------------------------------------------------------------------- every narrowing

onprem = {"trustType": "ServerAd", "onPremisesSyncEnabled": True, "operatingSystemVersion": "10.0.19045.0"}
recreated = {"at": "2025-01-01", "object_id": "old", "record": "r1"}
pending = device("pd", trustType="ServerAd", alternativeSecurityIds=[], onPremisesSyncEnabled=True,
                 onPremisesSecurityIdentifier="S-1-5-21-1", approximateLastSignInDateTime=None)

NARROWINGS: list[tuple[str, Facts, Policy | None, Action, str]] = [
    ("hybrid sync carries", facts(device("h", **onprem)), None, Action.NOTIFY_ONPREM, "hybrid"),
    ("hybrid delete", delete_facts(tagged("hd", 40, **onprem)), None, Action.NOTIFY_ONPREM, "hybrid"),
    ("re-created by sync", delete_facts(pending, device_class="pending", recreated_from=recreated),
     enforce(pending={"action": "delete"}), Action.NOTIFY_ONPREM, "recreated_by_sync"),
    ("non-Windows disable", facts(device("m", operatingSystem="iOS", trustType="Workplace")), None, Action.TAG,
     "platform"),
    ("non-Windows delete, policy tags", delete_facts(device("a", operatingSystem="Android", accountEnabled=True)), None,
     Action.TAG, "platform"),
    ("non-Windows delete, not tagged yet", delete_facts(device("a2", operatingSystem="Android")),
     enforce(stale={"non_windows_action": "delete"}), Action.TAG, "platform"),
]


@pytest.mark.parametrize(("case", "f", "policy", "to", "gate"), NARROWINGS, ids=[c[0] for c in NARROWINGS])
def test_every_narrowing(case: str, f: Facts, policy: Policy | None, to: Action, gate: str) -> None:
    act = _act(f, policy)
    assert act.action is to, case
    [narrowing] = [g for g in act.gates if g.get("narrowed_to")]
    assert narrowing["name"] == gate and narrowing["narrowed_to"] == to.value
    assert act.narrowed == [narrowing["reason"]]
    assert bool(act.calls) == (to is Action.TAG), "only the tag still writes to the device"


def test_the_pending_opt_in_delete_is_not_narrowed() -> None:
    act = _act(delete_facts(pending, device_class="pending"), enforce(pending={"action": "delete"}))
    assert act.action is Action.DELETE and [c.method for c in act.calls] == ["DELETE"] and not act.narrowed


# --------------------------------------------------------------------------- every Graph answer -> decision


def _result(status: int, code: str | None = None, message: str | None = None) -> GraphResult:
    return GraphResult(status, f"req-{status}", error_code=code, error_message=message)


ANSWERS: list[tuple[str, str, GraphResult, str, str, type[Exception] | None]] = [
    ("disable done", "disable", _result(204), "acted", "disabled and tagged", None),
    ("delete done", "delete", _result(204), "acted", "deleted", None),
    ("delete finds it gone", "delete", _result(404), "acted", "already gone (404)", None),
    ("patch finds it gone", "disable", _result(404), "skipped", "deleted before the write", None),
    ("non-Windows refusal", "disable", _result(400, "Request_BadRequest", NON_WINDOWS_PATCH), "failed",
     "for good (400 Request_BadRequest; no permission", None),
    ("other bad request", "disable", _result(400, "Request_BadRequest", "bad body"), "failed",
     "Graph refused the disable: bad body", None),
    ("conflict", "delete", _result(409, "Conflict", "busy object"), "failed", "Graph refused the delete", None),
    ("permission", "disable", _result(403, "Authorization_RequestDenied", "grant Device.ReadWrite.All"), "failed",
     "Device.ReadWrite.All", None),
    ("token", "tag", _result(401, "InvalidAuthenticationToken", "token"), "failed", "Graph refused the tag", None),
    ("throttled", "disable", _result(429, "TooManyRequests", "slow down"), "failed", "did not go through",
     GraphThrottled),
    ("unavailable", "delete", _result(503, "ServiceUnavailable", "later"), "failed", "did not go through",
     GraphUnavailable),
    ("server error", "tag", _result(500), "failed", "did not go through", GraphUnavailable),
    ("never reached", "disable", _result(0, None, "connection refused"), "failed", "did not go through",
     GraphUnavailable),
]


def _act_for(action: str) -> Act:
    if action == "delete":
        return _act(delete_facts(tagged("x", 40)))
    if action == "tag":
        return _act(facts(device("x", operatingSystem="iOS", trustType="Workplace")))
    return _act(facts(device("x")))


@pytest.mark.parametrize(("case", "action", "write", "decision", "words", "retry"), ANSWERS, ids=[c[0] for c in ANSWERS])
def test_every_graph_answer(case: str, action: str, write: GraphResult, decision: str, words: str,
                            retry: type[Exception] | None) -> None:
    act = _act_for(action)
    assert act.action is Action(action)
    outcome = core.interpret(act, Results(write=write))
    assert outcome.decision == decision and words in outcome.reason, (case, outcome.reason)
    assert outcome.writes == 1 and outcome.record is not None
    assert outcome.record["status"] == write.status and outcome.record["done"] is (decision == "acted")
    assert (type(outcome.retry) if outcome.retry else None) is retry
    if retry is not None:
        assert outcome.retry is not None and outcome.retry.transient and outcome.retry.status == write.status
    assert outcome.settle == ("dead_letter" if decision == "failed" else "complete")


def test_the_outcome_record_shows_the_device_before_and_after() -> None:
    act = _act(facts(device("ba")))
    done = core.interpret(act, Results(write=_result(204))).record
    refused = core.interpret(act, Results(write=_result(403, None, "no"))).record
    assert done is not None and refused is not None
    assert done["before"]["accountEnabled"] is True and done["after"]["accountEnabled"] is False
    assert done["after"]["extensionAttributes"]["extensionAttribute15"].startswith("entra-janitor|disabled|")
    assert refused["after"] == refused["before"], "a refused write changed nothing"
    gone = core.interpret(_act(delete_facts(tagged("bd", 40))), Results(write=_result(204))).record
    assert gone is not None and gone["after"] is None


MAILS: list[tuple[str, dict[str, Any], str]] = [
    ("sent", {"sent": True, "status": 202}, "acted"),
    ("held for the digest", {"sent": False, "digest": True}, "acted"),
    ("refused", {"sent": False, "status": 403, "error": "no Mail.Send"}, "failed"),
    ("throttled", {"sent": False, "status": 429, "error": "slow"}, "failed"),
    ("never reached", {"sent": False, "status": 0, "error": "unreachable"}, "failed"),
]


@pytest.mark.parametrize(("case", "mail", "decision"), MAILS, ids=[c[0] for c in MAILS])
def test_a_mail_only_action_is_decided_by_its_mail(case: str, mail: dict[str, Any], decision: str) -> None:
    act = _act(facts(device("h", **onprem)))
    assert act.action is Action.NOTIFY_ONPREM
    outcome = core.interpret(act, Results(mail=mail))
    assert outcome.decision == decision and outcome.writes == 0, case
    assert outcome.record is not None and outcome.record["mail"] == mail
    if decision == "failed":
        assert outcome.reason.startswith("sendMail failed")


def test_a_failed_mail_does_not_undo_a_write() -> None:
    outcome = core.interpret(_act(facts(device("m"))), Results(write=_result(204), mail={"sent": False, "status": 500}))
    assert outcome.decision == "acted" and outcome.record is not None and outcome.record["mail"]["status"] == 500


def test_read_only_actions() -> None:
    ticket = facts(device("t"), "scope_check", device_class="ticket")
    act = _act(ticket)
    assert core.interpret(act, Results()).decision == "skipped"
    scope = {"allowed": False, "reasons": ["not in a selected group"], "scope": "selected"}
    outcome = core.interpret(act, Results(user="u1", scope=scope))
    assert outcome.decision == "acted" and outcome.reason == "Entra join not allowed for u1: not in a selected group"
    assert outcome.data == {"scope": scope} and outcome.record is None
    diagnosed = core.interpret(_act(facts(device("t"), "diagnose", device_class="ticket")),
                               Results(diagnosis={"stage": "pending"}))
    assert diagnosed.reason == "diagnosed: stage pending" and diagnosed.data == {"diagnosis": {"stage": "pending"}}


# --------------------------------------------------------------------------- notices


def test_the_notice_says_the_undo_for_the_trust_type_and_retire_in_intune_first() -> None:
    policy = enforce(notify={"admins": ["it@contoso.test"]})
    synced = NOW - timedelta(days=60)
    act = _act(facts(device("n", trustType="AzureAd"), intune_last_sync=synced), policy)
    notice = core.notice(act, [], policy, NOW)
    assert notice is not None and notice.to == ["it@contoso.test"]
    assert "Entra joined device cannot be signed in to" in notice.undo
    assert f"last check-in {synced:%Y-%m-%d}" in notice.advice and "retire it in Intune first" in notice.advice
    assert f"intune_last_sync: {synced.isoformat()}" in notice.body_html
    registered = core.notice(_act(facts(device("w", trustType="Workplace")), policy), [], policy, NOW)
    assert registered is not None and "cannot be signed in to" not in registered.undo and not registered.advice


def test_who_is_told() -> None:
    owner = Owner("u1", "Ann", "ann@contoso.test", "ann@contoso.test")
    act = _act(facts(device("o")))
    assert core.reads_owners(act, enforce())
    assert core.notice(act, [], enforce(), NOW) is None, "no owner, no admin: nobody"
    told = core.notice(act, [owner], enforce(), NOW)
    assert told is not None and told.to == ["ann@contoso.test"]
    clear = _act(facts(tagged("c", 40, accountEnabled=True), "clear_tag"))
    assert not core.reads_owners(clear, enforce()) and core.notice(clear, [owner], enforce(), NOW) is None


def test_a_mail_only_action_without_recipients_or_sender_is_skipped() -> None:
    act = _act(facts(device("h", **onprem)))
    owner = Owner("u1", "Ann", "ann@contoso.test", "ann@contoso.test")
    told = core.notice(act, [owner], enforce(), NOW)
    nobody = core.hold_mail(act, None, "janitor@contoso.test")
    no_sender = core.hold_mail(act, told, None)
    assert nobody is not None and nobody.decision == "skipped" and "no recipients" in nobody.reason
    assert no_sender is not None and "MAIL_SENDER is not set" in no_sender.reason
    assert core.hold_mail(act, told, "janitor@contoso.test") is None
    assert core.hold_mail(_act(facts(device("w"))), None, None) is None, "a write is done without a notice"


# --------------------------------------------------------------------------- redeliveries and errors


def _record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(partition="2025-06-01", seq=1, record_id="2025-06-01:0000000001", at=NOW, entry=entry,
                       prev_hash="", hash="")


def test_reconcile_reads_the_action_table() -> None:
    before = device("rc")
    cmd = command(before)
    intent = _record(records.intent_entry(cmd, "disable", [], [], before))
    mine = Tag("disabled", NOW, "stale", cmd.run_id).render()
    done = device("rc", accountEnabled=False, extensionAttributes={"extensionAttribute15": mine})
    other_run = device("rc", accountEnabled=False,
                       extensionAttributes={"extensionAttribute15": Tag("disabled", NOW, "stale", "run-9").render()})
    assert core.reconcile(cmd, intent, before, enforce()) is None, "not done: gated afresh"
    assert core.reconcile(cmd, intent, other_run, enforce()) is None, "someone else's run"
    outcome = core.reconcile(cmd, intent, done, enforce())
    assert outcome is not None and outcome.decision == "acted" and "reconciled" in outcome.reason
    assert outcome.record is not None and outcome.record["reconciled"] is True and outcome.writes == 0


def test_a_decision_follows_from_an_earlier_outcome() -> None:
    cmd = command(device("fo"))
    outcome = _record(records.outcome_entry(cmd, "disable", "Graph refused the disable", {"decision": "failed"}))
    stop = core.from_outcome(cmd, outcome)
    assert stop.decision == "failed" and stop.settle == "dead_letter" and "earlier delivery" in stop.reason


ERRORS: list[tuple[Exception, bool]] = [
    (GraphThrottled("slow", status=429), True),
    (GraphUnavailable("down", status=503), True),
    (AuditUnavailable("audit down"), True),
    (RuntimeError("a bug"), True),
    (GraphPermissionDenied("grant X", status=403), False),
    (GraphBadRequest("bad", status=400), False),
    (GraphNotFound("gone", status=404), False),
    (InvalidCommand("not a command"), False),
]


@pytest.mark.parametrize(("error", "transient"), ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
def test_the_error_class_decides_retry_or_failed(error: Exception, transient: bool) -> None:
    cmd = command(device("er"))
    first = core.give_up(cmd, error, 1, 3)
    last = core.give_up(cmd, error, 3, 3)
    assert last is not None and last.decision == "failed" and last.settle == "dead_letter"
    assert last.data == {"error": type(error).__name__} and str(error) in last.reason
    if transient:
        assert first is None and last.reason.startswith("gave up after 3 deliveries")
    else:
        assert first is not None and first.reason == last.reason == str(error)
