"""What a run did that can be put back, read from its audit records, and the command that puts each back (pure).

For every acted disable, delete and tag of the run: the undo (reenable, restore, clear_tag), the device as
entra-janitor last read it before the write (a delete's intent holds the full object, its owners and its
groups: what the restore is checked against), and whether an earlier undo already put it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec

from shared.actions import UNDOES, Action, parse_action
from shared.commands import RemediationCommand, message_id
from shared.jsonshape import is_array, is_object
from shared.models import Device
from shared.ports import AuditRecord

#: The undo of each write, read backwards from the action table's UNDOES.
UNDO_OF: Mapping[Action, Action] = {done: undo for undo, done in UNDOES.items()}


@dataclass(frozen=True, slots=True)
class Undoable:
    """One acted write of a run and the undo that puts it back."""

    decision: AuditRecord  # the acted decision
    undo: Action  # reenable | restore | clear_tag
    snapshot: Device | None = None  # the device as read before the write (a delete: its intent's snapshot)
    owners: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    groups: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    undone_by: str | None = None  # the undo command that already put it back

    @property
    def device(self) -> str:
        entry = self.decision.entry
        return entry.display_name or entry.device_object_id or entry.device_id or "?"

    @property
    def reference(self) -> dict[str, Any]:
        """What the undo's records name as undone: the decision record, its command and run, the action."""
        entry = self.decision.entry
        return {
            "run_id": entry.run_id,
            "command_id": entry.command_id,
            "record_id": self.decision.record_id,
            "action": entry.action,
            "owners": self.owners,
            "groups": self.groups,
        }


def _device(value: Any) -> Device | None:
    if not is_object(value):
        return None
    try:
        return msgspec.convert(dict(value), Device)
    except msgspec.ValidationError:
        return None


def _listed(value: Any) -> list[dict[str, Any]]:
    return [dict(item) for item in value if is_object(item)] if is_array(value) else []


def _matches(record: AuditRecord, device: str | None) -> bool:
    if device is None:
        return True
    entry, key = record.entry, device.strip().lower()
    return key in {(entry.display_name or "").lower(), (entry.device_object_id or "").lower(), (entry.device_id or "").lower()}


def plan(records: Iterable[AuditRecord], *, device: str | None = None) -> list[Undoable]:
    """The run's acted writes (oldest first), each with its undo; `device` keeps one device (name or id)."""
    intents: dict[str, AuditRecord] = {}
    undone: dict[str, str] = {}
    acted: list[AuditRecord] = []
    for record in records:
        entry = record.entry
        if entry.kind == "intent" and entry.command_id:
            intents[entry.command_id] = record
        elif entry.kind == "undo" and entry.decision == "undone" and entry.command_id:
            undone[entry.command_id] = str(entry.data.get("undo_command_id") or "")
        elif entry.kind == "decision" and entry.decision == "acted" and _matches(record, device):
            action = parse_action(entry.action)
            if action in UNDO_OF and entry.command_id:
                acted.append(record)
    return [_undoable(record, intents.get(record.entry.command_id or ""), undone) for record in acted]


def _undoable(decision: AuditRecord, intent: AuditRecord | None, undone: Mapping[str, str]) -> Undoable:
    action = Action(decision.entry.action or "")
    data: Mapping[str, Any] = intent.entry.data if intent is not None else {}
    snap = data.get("snapshot")
    snapshot_data: Mapping[str, Any] = snap if is_object(snap) else {}
    before = _device(snapshot_data.get("device")) or _device(data.get("before"))
    return Undoable(
        decision=decision,
        undo=UNDO_OF[action],
        snapshot=before,
        owners=_listed(snapshot_data.get("owners")),
        groups=_listed(snapshot_data.get("groups")),
        undone_by=undone.get(decision.entry.command_id or "") or None,
    )


def undo_command(
    item: Undoable,
    *,
    trigger: Literal["undo", "keep"],
    requested_by: str,
    now: datetime,
    policy_hash: str,
    extra: Mapping[str, Any] | None = None,
) -> RemediationCommand:
    """The command that puts one write back, through the queue and the worker's gates like any other.

    Its id is keyed to the decision undone and the minute it was asked for (a repeat within the minute is
    the same message; a later attempt, after a permission was granted say, is a new one). A restore carries
    the deleted device's snapshot (the restorable gate checks deviceId and trust type against it); a
    re-enable carries none: the gates judge the device as it is now.
    """
    entry = item.decision.entry
    object_id = entry.device_object_id or ""
    stamp = now.strftime("%Y-%m-%dT%H:%M")
    return RemediationCommand(
        command_id=message_id(trigger, entry.command_id or object_id, item.undo.value, stamp),
        run_id=f"{trigger}-{entry.run_id}",
        trigger=trigger,
        device_object_id=object_id,
        device_id=entry.device_id,
        display_name=entry.display_name,
        device_class=trigger,
        proposed_action=item.undo.value,  # reenable | restore | clear_tag
        evidence={"undo": item.reference, "requested_by": requested_by, **(extra or {})},
        snapshot=item.snapshot if item.undo is Action.RESTORE else None,
        policy_hash=policy_hash,
        created_at=now,
    )


def summary(items: Sequence[Undoable]) -> dict[str, int]:
    """How many writes of each kind the plan covers (for the CLI's last line)."""
    counts: dict[str, int] = {}
    for item in items:
        key = str(item.decision.entry.action)
        counts[key] = counts.get(key, 0) + 1
    return counts
