"""Undo a run (or one device of it): read its writes from the audit log, then preview or queue their undo.

The preview (`dry_run`) reads each device now and runs the worker's own check on it (shared/undo/checks.py),
so it says what the worker would do; it writes nothing. Otherwise each undo is recorded (kind `undo`, phase
`requested`, naming who asked and the decision undone) and queued: the worker applies it through the same
gates as any write (kill switch, tag ownership, the undo checks, budget, mode), with an intent before and an
outcome after, and marks the decision it undid `undone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import commands
from shared.actions import Action
from shared.policy import Policy, policy_hash
from shared.ports import AuditEntry, AuditLog, AuditQuery, AuditRecord, GraphPort, OutgoingMessage, QueueSender
from shared.undo.checks import check
from shared.undo.plan import Undoable, plan, undo_command
from shared.worker.records import command_entry


@dataclass(frozen=True, slots=True)
class UndoLine:
    """One write of the run and what becomes of it: queued, would (dry run), skipped, already undone."""

    device: str
    object_id: str
    did: str  # disable | delete | tag
    undo: str  # reenable | restore | clear_tag
    status: str
    reason: str
    command_id: str | None = None


async def undo(
    *,
    audit: AuditLog,
    graph: GraphPort,
    sender: QueueSender | None,
    policy: Policy,
    run_id: str,
    now: datetime,
    requested_by: str,
    device: str | None = None,
    dry_run: bool = False,
) -> list[UndoLine]:
    """Preview or queue the undo of every write `run_id` made (to `device` only, when given)."""
    records = [r async for r in audit.iter_records(AuditQuery(run_id=run_id))]
    items = plan(records, device=device)
    if dry_run:
        return [await _preview(item, graph, policy) for item in items]
    if sender is None:
        raise ValueError("a queue sender is needed unless dry_run")
    return await _queue(items, audit, sender, policy, now, requested_by)


async def decision_undone(audit: AuditLog, object_id: str, run_id: str, action: str) -> dict[str, Any]:
    """The acted `action` of `run_id` on the device that an undo puts back: its record and command (None when the log
    does not have it; the undo is still checked against the device itself)."""
    query = AuditQuery(run_id=run_id, device=object_id, kind="decision", decision="acted", action=action)
    async for record in audit.iter_records(query):
        if record.entry.device_object_id == object_id:
            return {"run_id": run_id, "command_id": record.entry.command_id, "record_id": record.record_id, "action": action}
    return {"run_id": run_id, "command_id": None, "record_id": None, "action": action}


async def deleted_by_us(audit: AuditLog, device: str, since: datetime) -> list[AuditRecord]:
    """The intents of entra-janitor's deletes of a device (name, object id or deviceId) since then, newest first."""
    query = AuditQuery(device=device, kind="intent", action="delete", since=since)
    found = [record async for record in audit.iter_records(query)]
    return found[::-1]


def _line(item: Undoable, status: str, reason: str, command_id: str | None = None) -> UndoLine:
    entry = item.decision.entry
    return UndoLine(item.device, entry.device_object_id or "", str(entry.action), item.undo.value, status, reason, command_id)


async def _preview(item: Undoable, graph: GraphPort, policy: Policy) -> UndoLine:
    if item.undone_by:
        return _line(item, "already undone", f"by command {item.undone_by}")
    object_id = item.decision.entry.device_object_id or ""
    current = await graph.get_device(object_id)
    deleted = await graph.deleted_device(object_id) if item.undo is Action.RESTORE and current is None else None
    verdict = check(
        item.undo,
        current=current,
        run_id=item.decision.entry.run_id,
        attribute=policy.tag.attribute,
        deleted=deleted,
        snapshot=item.snapshot,
    )
    if verdict.ok:
        return _line(item, f"would {item.undo.value}", verdict.reason)
    return _line(item, verdict.decision, verdict.reason)


async def _queue(
    items: Sequence[Undoable], audit: AuditLog, sender: QueueSender, policy: Policy, now: datetime, requested_by: str
) -> list[UndoLine]:
    lines: list[UndoLine] = []
    todo: list[tuple[Undoable, commands.RemediationCommand]] = []
    for item in items:
        if item.undone_by:
            lines.append(_line(item, "already undone", f"by command {item.undone_by}"))
            continue
        command = undo_command(item, trigger="undo", requested_by=requested_by, now=now, policy_hash=policy_hash(policy))
        todo.append((item, command))
    if not todo:
        return lines
    await audit.append_many([_requested(item, command, requested_by) for item, command in todo])
    messages = [OutgoingMessage(message_id=c.command_id, body=commands.encode(c), subject="undo") for _, c in todo]
    await sender.send(messages)
    lines += [_line(item, "queued", "the worker checks it again and applies it", c.command_id) for item, c in todo]
    return lines


def _requested(item: Undoable, command: commands.RemediationCommand, requested_by: str) -> AuditEntry:
    """The record that says who asked for an undo and which decision it undoes (before it is queued)."""
    entry = item.decision.entry
    return command_entry(
        command,
        "undo",
        action=item.undo.value,
        actor=requested_by,
        reason=f"undo of {entry.action} by run {entry.run_id} requested by {requested_by}",
        data={"phase": "requested", "undoes": {k: v for k, v in item.reference.items() if k not in ("owners", "groups")}},
    )
