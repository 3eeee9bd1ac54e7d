"""Deliver finished ticket results to their callback URLs: an outbox read from the audit log.

The worker records a ticket's result (kind "ticket", phase "result"); this pass finds results whose intake
asked for a callback and that have no successful delivery yet, POSTs the status document (signed), and
records each attempt (phase "callback"). It runs on a timer in Azure and after `janitor ticket` locally,
so delivery does not depend on the worker and a receiver that is down is retried on the next pass.
Delivery is at least once: receivers should treat the request id as the idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from shared.ports import AuditEntry, AuditLog, AuditQuery, AuditRecord
from shared.tickets.callbacks import AllowEntry, Delivery, deliver
from shared.tickets.status import records_for, status_from_records

MAX_ATTEMPTS = 5
LOOKBACK = timedelta(days=2)


def _phase(record: AuditRecord) -> str | None:
    return record.entry.data.get("phase")


@dataclass(slots=True)
class _Request:
    """What the outbox needs of one request that asked for a callback: a few fields, not its records."""

    url: str
    finished: bool = False
    attempts: int = 0
    delivered: bool = False


@dataclass(slots=True)
class Outbox:
    """Requests that asked for a callback, folded from "ticket" records one at a time, oldest first (pure)."""

    requests: dict[str, _Request] = field(default_factory=dict[str, _Request])

    def add(self, record: AuditRecord) -> None:
        command_id, data, phase = record.entry.command_id, record.entry.data, _phase(record)
        if not command_id:
            return
        if phase == "intake":
            if data.get("callback_url") and command_id not in self.requests:
                self.requests[command_id] = _Request(str(data["callback_url"]))
            return
        request = self.requests.get(command_id)
        if request is None:
            return
        if phase == "result":
            request.finished = True
        elif phase == "callback":
            request.attempts += 1
            request.delivered |= bool(data.get("ok"))

    def due(self, max_attempts: int = MAX_ATTEMPTS) -> list[tuple[str, str]]:
        """(request id, callback url) of results that still need delivering."""
        return [
            (rid, r.url) for rid, r in self.requests.items() if r.finished and not r.delivered and r.attempts < max_attempts
        ]


async def deliver_pending(
    audit: AuditLog,
    *,
    secret: bytes,
    allowlist: tuple[AllowEntry, ...],
    now: datetime,
    client: Any = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[Delivery]:
    """One outbox pass: deliver every due result once and record each attempt. The scan of recent ticket
    records is folded as it streams (a few fields per request held, never the records)."""
    outbox = Outbox()
    async for record in audit.iter_records(AuditQuery(kind="ticket", since=now - LOOKBACK)):
        outbox.add(record)
    deliveries: list[Delivery] = []
    for rid, url in outbox.due(max_attempts):
        all_records = await records_for(audit, rid)
        doc = status_from_records(rid, all_records)
        if doc is None:
            continue
        attempt = 1 + sum(1 for r in all_records if r.entry.kind == "ticket" and _phase(r) == "callback")
        result = await deliver(url, doc, secret=secret, allowlist=allowlist, now=now.timestamp(), client=client)
        deliveries.append(result)
        intake = next(r for r in all_records if r.entry.kind == "ticket" and _phase(r) == "intake")
        await audit.append(
            AuditEntry(
                kind="ticket",
                run_id=intake.entry.run_id,
                command_id=rid,
                ticket=intake.entry.ticket,
                device_object_id=intake.entry.device_object_id,
                device_id=intake.entry.device_id,
                display_name=intake.entry.display_name,
                action=intake.entry.action,
                reason=f"callback to {urlsplit(url).hostname}: " + ("delivered" if result.ok else f"failed ({result.error})"),
                data={"phase": "callback", "ok": result.ok, "status": result.status, "attempt": attempt, "error": result.error},
            )
        )
    return deliveries
