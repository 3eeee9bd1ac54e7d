"""The versioned RemediationCommand: what the scan and the ticket webhook queue and the worker consumes.

Wire format: JSON (msgspec), `schema` = "entra-janitor/command", `version` = 1. A message that does not
decode into this exact shape is an InvalidCommand: dead-lettered with a reason, never acted on.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import msgspec

from shared.errors import InvalidCommand
from shared.models import Device

SCHEMA = "entra-janitor/command"
VERSION = 1

#: undo: `janitor undo`; keep: a device owner's keep link (both put back what entra-janitor did).
Trigger = Literal["nightly", "ticket", "manual", "undo", "keep"]
#: What the scan proposes; the worker's gates may narrow it (never widen it).
Action = Literal[
    "disable", "delete", "tag", "clear_tag", "notify", "notify_onprem", "report", "diagnose", "scope_check",
    "reenable", "restore",
]


class TicketRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where a ticket-driven command came from, so the audit log can say who asked."""

    source: str  # generic | jira | servicenow
    ticket_id: str
    requested_by: str | None = None
    callback_url: str | None = None
    request_id: str | None = None
    dsregcmd: str | None = None  # raw `dsregcmd /status` text attached to the ticket
    user: str | None = None  # UPN or object id of the affected user, when the ticket names one


class RemediationCommand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """One command per device. `snapshot` is the device as the scan saw it (the worker re-reads and compares)."""

    schema: str = SCHEMA
    version: int = VERSION
    command_id: str
    run_id: str
    trigger: Trigger
    device_object_id: str
    device_id: str | None = None
    display_name: str | None = None
    device_class: str  # classification: pending, stale, duplicate, expired_disabled, ... (or "ticket")
    proposed_action: Action
    evidence: dict[str, Any] = {}
    snapshot: Device | None = None
    policy_hash: str
    created_at: datetime
    ticket: TicketRef | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(RemediationCommand)


def encode(command: RemediationCommand) -> bytes:
    return _encoder.encode(command)


def decode(body: bytes | str) -> RemediationCommand:
    """Decode and validate a queue message body; any problem is an InvalidCommand saying what is wrong."""
    try:
        command = _decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidCommand(f"not a valid RemediationCommand: {exc}") from exc
    if command.schema != SCHEMA:
        raise InvalidCommand(f"unknown schema {command.schema!r} (expected {SCHEMA!r})")
    if command.version != VERSION:
        raise InvalidCommand(f"unsupported command version {command.version} (this worker reads version {VERSION})")
    return command


def message_id(*parts: str) -> str:
    """Deterministic MessageId (Service Bus duplicate detection): same parts, same id."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
