"""A ticket request's state, read back from the audit log (the only place it is kept).

Records for one request share `command_id` = request id: the intake record (kind "ticket", phase
"intake"), the worker's terminal "decision" (holding the diagnosis or scope check), its "ticket" result
record (phase "result", naming the decision's fields that hold the result: stored once, not twice), and
callback attempts (phase "callback").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.ports import AuditLog, AuditQuery, AuditRecord

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
#: What a ticket's result is made of; the result record lists, under IN_DECISION, those the decision holds.
RESULT_FIELDS = ("diagnosis", "scope")
IN_DECISION = "in_decision"


def result_reference(decision_data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The result record's data: which RESULT_FIELDS the decision record holds (a diagnosis is kept once)."""
    return {IN_DECISION: [name for name in RESULT_FIELDS if name in (decision_data or {})]}


def _result(name: str, result: AuditRecord | None, decision: AuditRecord | None) -> Any:
    if result is None:
        return None
    if name in result.entry.data.get(IN_DECISION, ()):
        return decision.entry.data.get(name) if decision is not None else None
    return result.entry.data.get(name)  # a result recorded before the reference, or by a test


def is_request_id(value: str) -> bool:
    return bool(REQUEST_ID.match(value))


def _phase(record: AuditRecord) -> str | None:
    return record.entry.data.get("phase") if record.entry.kind == "ticket" else None


def status_from_records(request_id: str, records: Sequence[AuditRecord]) -> dict[str, Any] | None:
    """The status document (GET /api/tickets/{id} and the callback body); None when nothing is recorded."""
    intakes = [r for r in records if _phase(r) in ("intake", "queue_failed")]
    if not intakes:
        return None
    first = next((r for r in intakes if _phase(r) == "intake"), intakes[0])
    latest_intake = intakes[-1]
    data = first.entry.data
    decision = next((r for r in records if r.entry.kind == "decision"), None)
    result = next((r for r in reversed(records) if _phase(r) == "result"), None)
    callbacks = [r for r in records if _phase(r) == "callback"]
    if decision is not None:
        state = "failed" if decision.entry.decision == "failed" else "completed"
    elif _phase(latest_intake) == "queue_failed":
        state = "not_queued"
    else:
        state = "queued"
    doc: dict[str, Any] = {
        "request_id": request_id,
        "state": state,
        "source": data.get("source"),
        "ticket_id": data.get("ticket_id"),
        "action": first.entry.action,
        "requested_by": data.get("requested_by"),
        "device": {
            "ref": data.get("device_ref"),
            "id": first.entry.device_object_id if data.get("resolved") else None,
            "deviceId": first.entry.device_id,
            "displayName": first.entry.display_name,
        },
        "received_at": first.at.isoformat(),
        "decision": decision.entry.decision if decision else None,
        "reason": decision.entry.reason if decision else None,
        "decided_at": decision.at.isoformat() if decision else None,
        "diagnosis": _result("diagnosis", result, decision),
        "scope": _result("scope", result, decision),
    }
    if data.get("callback_url"):
        doc["callback"] = {
            "attempts": len(callbacks),
            "delivered": any(r.entry.data.get("ok") for r in callbacks),
            "last_status": callbacks[-1].entry.data.get("status") if callbacks else None,
        }
    return doc


#: How long a ticket request stays answerable (and idempotent): older records are not read, so Table Storage
#: queries touch only this many daily partitions instead of the whole table.
TICKET_RETENTION = timedelta(days=90)


async def records_for(audit: AuditLog, request_id: str, *, kind: str | None = None) -> list[AuditRecord]:
    since = datetime.now(UTC) - TICKET_RETENTION
    return [r async for r in audit.iter_records(AuditQuery(command_id=request_id, kind=kind, since=since))]


async def ticket_status(audit: AuditLog, request_id: str) -> dict[str, Any] | None:
    """State and result of a request; None when the id is unknown."""
    if not is_request_id(request_id):
        return None
    return status_from_records(request_id, await records_for(audit, request_id))
