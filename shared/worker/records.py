"""Audit entries the worker writes (pure builders): decision, intent, outcome, ticket, and invalid messages.

One terminal `decision` per command; an `intent` before any Graph write, an `outcome` after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from shared.commands import RemediationCommand
from shared.models import Device
from shared.ports import AuditEntry, AuditRecord, GroupRef, Owner

TERMINAL = ("acted", "dry_run", "skipped", "blocked", "deferred", "failed")


def snapshot(device: Device | None) -> dict[str, Any] | None:
    """A device as JSON-ready data (Graph's camelCase names), for before/after snapshots."""
    return None if device is None else msgspec.to_builtins(device)


def command_entry(command: RemediationCommand, kind: str, **fields: Any) -> AuditEntry:
    """A record about one command: its run, id, ticket and device, plus `fields` (the one place these are copied)."""
    return AuditEntry(
        kind=kind,
        run_id=command.run_id,
        command_id=command.command_id,
        ticket=command.ticket.ticket_id if command.ticket else None,
        device_object_id=command.device_object_id,
        device_id=command.device_id,
        display_name=command.display_name,
        **fields,
    )


def decision_entry(
    command: RemediationCommand,
    decision: str,
    action: str,
    reason: str,
    *,
    gates: Sequence[Mapping[str, Any]] = (),
    data: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """The command's one terminal decision, with the gates walked and the evidence."""
    if decision not in TERMINAL:
        raise ValueError(f"decision must be one of {', '.join(TERMINAL)}, not {decision!r}")
    payload: dict[str, Any] = {
        "gates": [dict(g) for g in gates],
        "evidence": dict(command.evidence),
        "device_class": command.device_class,
        "proposed_action": command.proposed_action,
        "trigger": command.trigger,
        "policy_hash": command.policy_hash,
    }
    payload.update(data or {})
    return command_entry(command, "decision", decision=decision, action=action, reason=reason, data=payload)


def intent_entry(
    command: RemediationCommand,
    action: str,
    gates: Sequence[Mapping[str, Any]],
    planned: Sequence[Mapping[str, Any]],
    before: Device | None,
    extra: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Written (durably) before any Graph write: what will be called and why it is allowed.

    `extra`: a delete's `snapshot` (what a restore is checked against), an undo's `undoes`.
    """
    data: dict[str, Any] = {"gates": [dict(g) for g in gates], "planned": [dict(p) for p in planned], "before": snapshot(before)}
    data.update(extra or {})
    return command_entry(command, "intent", action=action, reason="gates passed", data=data)


def delete_snapshot(device: Device, owners: Sequence[Owner], groups: Sequence[GroupRef]) -> dict[str, Any]:
    """What a restore needs to be checked against: the device as read, its registered owners, its groups."""
    return {
        "device": snapshot(device),
        "owners": [{"id": o.id, "userPrincipalName": o.user_principal_name, "displayName": o.display_name} for o in owners],
        "groups": [{"id": g.id, "displayName": g.display_name} for g in groups],
    }


def undone_entry(command: RemediationCommand, undo_action: str, reason: str, undoes: Mapping[str, Any]) -> AuditEntry:
    """The mark an acted undo leaves on the decision it undid: that decision's command and run, state `undone`."""
    original = str(undoes.get("action") or "")
    return AuditEntry(
        kind="undo",
        run_id=str(undoes.get("run_id") or "") or None,
        command_id=str(undoes.get("command_id") or "") or None,
        ticket=command.ticket.ticket_id if command.ticket else None,
        device_object_id=command.device_object_id,
        device_id=command.device_id,
        display_name=command.display_name,
        decision="undone",
        action=original or None,
        reason=f"undone by {command.trigger} ({undo_action}): {reason}",
        actor=str(command.evidence.get("requested_by") or "entra-janitor"),
        data={
            "undo_command_id": command.command_id,
            "undo_run_id": command.run_id,
            "undo_action": undo_action,
            "undone_record": undoes.get("record_id"),
        },
    )


def outcome_entry(command: RemediationCommand, action: str, reason: str, data: Mapping[str, Any]) -> AuditEntry:
    """Written after the Graph write: status, request-id, before/after."""
    return command_entry(command, "outcome", action=action, reason=reason, data=dict(data))


def ticket_entry(command: RemediationCommand, decision: str, action: str, reason: str, data: Mapping[str, Any]) -> AuditEntry:
    """The result of a ticket-driven command, for the ticket status API and the callback."""
    return command_entry(command, "ticket", decision=decision, action=action, reason=reason, data={"phase": "result", **data})


def invalid_entry(message_id: str, delivery_count: int, problem: str, body: bytes) -> AuditEntry:
    """A message that is not a valid RemediationCommand: dead-lettered, never acted on."""
    excerpt = body[:512].decode("utf-8", errors="replace")
    return AuditEntry(
        kind="decision",
        command_id=invalid_command_id(message_id),
        decision="failed",
        action="none",
        reason=f"dead-lettered: {problem}",
        data={"message_id": message_id, "delivery_count": delivery_count, "body_excerpt": excerpt, "body_bytes": len(body)},
    )


def invalid_command_id(message_id: str) -> str:
    """The audit command id under which an invalid message's dead-lettering is recorded."""
    return f"invalid-message:{message_id}"


class Prior(msgspec.Struct, kw_only=True):
    """What the audit log already holds for a command (a redelivery finds its earlier progress here)."""

    decision: AuditRecord | None = None
    intent: AuditRecord | None = None
    outcome: AuditRecord | None = None

    @classmethod
    def of(cls, records: Sequence[AuditRecord]) -> Prior:
        prior = cls()
        for record in records:
            kind = record.entry.kind
            if kind == "decision" and prior.decision is None:
                prior.decision = record
            elif kind == "intent":
                prior.intent = record  # the latest attempt's intent
                prior.outcome = None
            elif kind == "outcome":
                prior.outcome = record
        return prior
