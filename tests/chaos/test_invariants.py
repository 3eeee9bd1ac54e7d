"""The invariant checks themselves catch what they are meant to catch (so a green chaos run means something)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.ports import AuditEntry, AuditRecord, DeadLetter
from simulator import WriteRecord
from tests.chaos.invariants import Evidence, check

T0 = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)


def record(seq: int, kind: str, command: str, device: str, *, decision: str | None = None, action: str = "disable",
           data: dict | None = None) -> AuditRecord:
    entry = AuditEntry(kind=kind, command_id=command, device_object_id=device, decision=decision, action=action,
                       data=data or {})
    return AuditRecord("2025-06-01", seq, f"2025-06-01:{seq:010d}", T0 + timedelta(seconds=seq), entry, "0" * 64, "0" * 64)


def write(device: str, second: float, method: str = "PATCH") -> WriteRecord:
    return WriteRecord(method, device, {}, T0 + timedelta(seconds=second), 204, "req", "anonymous")


def dead(message_id: str, reason: str = "InvalidCommand", description: str = "not JSON") -> DeadLetter:
    return DeadLetter(message_id, b"", reason, description, 1, T0)


def clean() -> dict:
    """A run that kept every promise: c1 disabled d1 (intent, write, outcome, decision), c2 was blocked."""
    return {
        "selected": frozenset({"c1", "c2"}),
        "records": [
            record(1, "intent", "c1", "d1"),
            record(3, "outcome", "c1", "d1"),
            record(4, "decision", "c1", "d1", decision="acted"),
            record(5, "decision", "c2", "d2", decision="blocked", action="delete"),
        ],
        "write_attempts": [write("d1", 2)],
        "flags": {"d1": frozenset({"windows", "bitlocker"}), "d2": frozenset({"bitlocker"})},
        "dead_letters": [dead("poison-0")],
        "poison_ids": frozenset({"poison-0"}),
    }


def violations(**changes) -> list[str]:
    return check(Evidence(**{**clean(), **changes}))["violations"]


def test_a_clean_run_has_no_violations():
    report = check(Evidence(**clean()))
    assert report["violations"] == [] and report["with_one_terminal_decision"] == 2
    assert report["patches_of_key_or_intune_devices_allowed"] == 1  # a disable keeps the keys: allowed


def test_each_broken_promise_is_named():
    base = clean()
    assert violations(selected=base["selected"] | {"c3"}) == ["without_decision"]
    twice = [*base["records"], record(6, "decision", "c2", "d2", decision="blocked", action="delete")]
    assert violations(records=twice) == ["with_several_decisions"]
    assert violations(write_attempts=[write("d1", 0.5)]) == ["writes_without_prior_intent"]  # before its intent
    assert "devices_written_twice" in violations(write_attempts=[write("d1", 2), write("d1", 2.5)])
    flags = {**base["flags"], "d1": frozenset({"protected_group"})}
    assert violations(flags=flags) == ["writes_to_protected_or_hybrid"]
    assert violations(flags={**base["flags"], "d1": frozenset({"hybrid"})}) == ["writes_to_protected_or_hybrid"]
    assert violations(flags={**base["flags"], "d1": frozenset({"hybrid", "unsynced_hybrid"})}) == []  # Entra's to clean
    deleted = [*base["records"][:1], record(1, "intent", "c1", "d1", action="delete")]
    assert violations(records=[*deleted, *base["records"][1:]], write_attempts=[write("d1", 2, "DELETE")]) == [
        "deletes_of_key_or_intune_devices"
    ]
    assert violations(dead_letters=[dead("poison-0"), dead("c1", "MaxDeliveryCountExceeded")]) == ["dead_letters_not_poison"]
    assert violations(dead_letters=[]) == ["poison_not_dead_lettered"]
    assert violations(dead_letters=[dead("poison-0", description=" ")]) == ["dead_letters_without_reason"]


def test_kill_windows_need_one_decision_and_a_reconciled_write():
    evidence = Evidence(**clean())
    assert check(evidence, {"intent": "c1"})["violations"] == []
    assert check(evidence, {"write": "d1"})["violations"] == ["kill_windows_broken"]  # written, but not reconciled
    records = clean()["records"]
    reconciled = [*records[:2], record(4, "decision", "c1", "d1", decision="acted", data={"reconciled": True}), records[3]]
    assert check(Evidence(**{**clean(), "records": reconciled}), {"write": "d1"})["violations"] == []
