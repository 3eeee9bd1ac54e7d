"""The promises a chaos run must keep, checked from what is left behind: the audit log, the tenant's own
record of writes, its ground truth and the dead-letter queue. Pure functions over plain data (no I/O).
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.ports import AuditRecord, DeadLetter
from simulator import WriteRecord

#: Devices no write of any kind may touch (ground-truth flags of the simulator). Hybrid objects too, unless sync no
#: longer carries changes to them ("unsynced_hybrid": those are cleaned up in Entra directly).
NEVER_WRITTEN = frozenset({"autopilot", "protected_group", "protected_group_nested", "protected_name", "special_profile"})
#: Devices that may be disabled (reversible, keys kept) but never deleted.
NEVER_DELETED = frozenset({"bitlocker", "intune_recent"})
#: Graph method -> the intent actions that plan it.
PLANNED_BY = {"PATCH": frozenset({"disable", "tag", "clear_tag"}), "DELETE": frozenset({"delete"})}
SAMPLE = 5


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the checks read, collected after the run."""

    selected: frozenset[str]  # command ids the scan queued + destructive candidates the breaker blocked
    records: Sequence[AuditRecord]  # the whole audit log
    write_attempts: Sequence[WriteRecord]  # every PATCH/DELETE that reached the tenant, refused ones included
    flags: Mapping[str, frozenset[str]]  # ground-truth flags per device, taken before the run
    dead_letters: Sequence[DeadLetter]
    poison_ids: frozenset[str]  # message ids of the poison messages injected


def _sample(items: Iterable[Any]) -> list[Any]:
    return sorted(items, key=str)[:SAMPLE]


def terminal_decisions(evidence: Evidence) -> dict[str, Any]:
    """Every selected command has exactly one `decision` record."""
    count = Counter(r.entry.command_id for r in evidence.records if r.entry.kind == "decision")
    missing = [c for c in evidence.selected if count[c] == 0]
    several = [c for c in evidence.selected if count[c] > 1]
    return {
        "selected": len(evidence.selected),
        "with_one_terminal_decision": len(evidence.selected) - len(missing) - len(several),
        "without_decision": len(missing),
        "with_several_decisions": len(several),
        "examples": [f"no decision: {c}" for c in _sample(missing)] + [f"several: {c}" for c in _sample(several)],
    }


def writes_without_intent(evidence: Evidence) -> dict[str, Any]:
    """Each Graph write is matched to its own earlier intent for that device and method (one intent, one write)."""
    intents: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for r in evidence.records:
        if r.entry.kind == "intent" and r.entry.device_object_id:
            intents[r.entry.device_object_id.lower()].append((r.at, r.entry.action or ""))
    unmatched: list[str] = []
    for write in sorted(evidence.write_attempts, key=lambda w: w.at):
        pool = intents.get(write.object_id.lower(), [])
        match = next((i for i, (at, action) in enumerate(pool) if at <= write.at and action in PLANNED_BY[write.method]), None)
        if match is None:
            unmatched.append(f"{write.method} {write.object_id}")
        else:
            pool.pop(match)
    kinds = Counter(_kind(w) for w in evidence.write_attempts)
    return {"graph_writes": len(evidence.write_attempts), "graph_writes_by_kind": dict(kinds),
            "writes_without_prior_intent": len(unmatched), "examples": _sample(unmatched)}


def _kind(write: WriteRecord) -> str:
    if write.method == "DELETE":
        return "delete"
    return "disable" if (write.body or {}).get("accountEnabled") is False else "tag"


def acted_twice(evidence: Evidence) -> dict[str, Any]:
    """No device written more than once, and no device with two `acted` decisions for device writes."""
    writes = Counter(w.object_id.lower() for w in evidence.write_attempts)
    twice = [oid for oid, n in writes.items() if n > 1]
    acted = Counter(
        (r.entry.device_object_id or "").lower()
        for r in evidence.records
        if r.entry.kind == "decision" and r.entry.decision == "acted" and r.entry.action in ("disable", "tag", "delete")
    )
    acted_twice_ = [oid for oid, n in acted.items() if n > 1]
    return {"devices_written_twice": len(twice), "devices_with_two_acted_decisions": len(acted_twice_),
            "examples": _sample(twice + acted_twice_)}


def forbidden_writes(evidence: Evidence) -> dict[str, Any]:
    """No write to protected or hybrid devices; no delete of devices holding BitLocker keys or an active Intune record."""
    touched, deleted, disabled_with_keys = [], [], 0
    for write in evidence.write_attempts:
        flags = evidence.flags.get(write.object_id, frozenset())
        never = flags & NEVER_WRITTEN | (flags & {"hybrid"} if "unsynced_hybrid" not in flags else frozenset())
        if never:
            touched.append(f"{write.method} {write.object_id} {sorted(never)}")
        if write.method == "DELETE" and flags & NEVER_DELETED:
            deleted.append(f"DELETE {write.object_id} {sorted(flags & NEVER_DELETED)}")
        elif write.method == "PATCH" and flags & NEVER_DELETED:
            disabled_with_keys += 1  # allowed: a disable is reversible and keeps the keys and the Intune record
    return {
        "writes_to_protected_or_hybrid": len(touched),
        "deletes_of_key_or_intune_devices": len(deleted),
        "patches_of_key_or_intune_devices_allowed": disabled_with_keys,
        "examples": _sample(touched + deleted),
    }


def dead_letter_queue(evidence: Evidence) -> dict[str, Any]:
    """The dead-letter queue holds exactly the poison messages, each with a reason and a description."""
    dead = {d.message_id for d in evidence.dead_letters}
    not_poison = dead - evidence.poison_ids
    missing = evidence.poison_ids - dead
    no_reason = [d.message_id for d in evidence.dead_letters if not d.reason.strip() or not d.description.strip()]
    return {
        "dead_letters": len(evidence.dead_letters),
        "dead_letters_not_poison": len(not_poison),
        "poison_not_dead_lettered": len(missing),
        "dead_letters_without_reason": len(no_reason),
        "reasons": dict(Counter(d.reason for d in evidence.dead_letters)),
        "examples": _sample(not_poison | missing | set(no_reason)),
    }


def kill_windows(evidence: Evidence, windows: Mapping[str, str]) -> dict[str, Any]:
    """The commands whose worker was SIGKILLed inside a window ended like every other: one decision, one write.

    `windows` maps "intent" to the command id killed between its intent and its Graph write, and "write" to
    the device whose Graph write went through just before the kill (no outcome recorded): that one must
    have been reconciled by the redelivery, not written again.
    """
    broken: list[str] = []
    decisions = [r for r in evidence.records if r.entry.kind == "decision"]
    writes = Counter(w.object_id.lower() for w in evidence.write_attempts)
    if "intent" in windows:
        mine = [r for r in decisions if r.entry.command_id == windows["intent"]]
        device = (mine[0].entry.device_object_id or "").lower() if mine else ""
        if len(mine) != 1 or writes[device] > 1:
            broken.append(f"intent window: {len(mine)} decision(s), {writes[device]} write(s)")
    if "write" in windows:
        device = windows["write"].lower()
        mine = [r for r in decisions if (r.entry.device_object_id or "").lower() == device]
        if len(mine) != 1 or writes[device] != 1 or not mine[0].entry.data.get("reconciled"):
            broken.append(f"write window: {len(mine)} decision(s), {writes[device]} write(s), not reconciled")
    return {"kill_windows_checked": sorted(windows), "kill_windows_broken": len(broken), "examples": broken}


#: The numbers that must be zero for a run to keep its promises.
MUST_BE_ZERO = (
    "without_decision",
    "with_several_decisions",
    "writes_without_prior_intent",
    "devices_written_twice",
    "devices_with_two_acted_decisions",
    "writes_to_protected_or_hybrid",
    "deletes_of_key_or_intune_devices",
    "dead_letters_not_poison",
    "poison_not_dead_lettered",
    "dead_letters_without_reason",
    "kill_windows_broken",
)


def check(evidence: Evidence, windows: Mapping[str, str] | None = None) -> dict[str, Any]:
    """All invariants; `violations` names every number that is not zero (empty when the run kept its promises)."""
    parts: list[Callable[[Evidence], dict[str, Any]]] = [
        terminal_decisions,
        writes_without_intent,
        acted_twice,
        forbidden_writes,
        dead_letter_queue,
        functools.partial(kill_windows, windows=windows or {}),
    ]
    report: dict[str, Any] = {}
    examples: dict[str, list[Any]] = {}
    for part in parts:
        result = part(evidence)
        found = result.pop("examples")
        if found:
            examples[getattr(part, "__name__", "kill_windows")] = found
        report.update(result)
    report["violations"] = [name for name in MUST_BE_ZERO if report[name]]
    report["examples"] = examples
    return report
