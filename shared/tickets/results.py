"""Deliver finished ticket results to their callback URLs: an outbox read from the audit log.

The worker records a ticket's result (kind "ticket", phase "result"); this pass finds results whose intake
asked for a callback and that have no successful delivery yet, POSTs the status document (signed), and
records each attempt (phase "callback"). It runs on a timer in Azure and after `janitor ticket` locally,
so delivery does not depend on the worker and a receiver that is down is retried on the next pass.
Delivery is at least once: receivers should treat the request id as the idempotency key.
"""

from __future__ import annotations

from collections import defaultdict
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


def due_callbacks(records: list[AuditRecord], *, max_attempts: int = MAX_ATTEMPTS) -> list[tuple[str, str]]:
    """(request id, callback url) of results that still need delivering, from "ticket" records (pure)."""
    by_command: dict[str, list[AuditRecord]] = defaultdict(list)
    for record in records:
        if record.entry.command_id:
            by_command[record.entry.command_id].append(record)
    due: list[tuple[str, str]] = []
    for command_id, group in by_command.items():
        intake = next((r for r in group if _phase(r) == "intake" and r.entry.data.get("callback_url")), None)
        if intake is None or not any(_phase(r) == "result" for r in group):
            continue
        attempts = [r for r in group if _phase(r) == "callback"]
        if any(r.entry.data.get("ok") for r in attempts) or len(attempts) >= max_attempts:
            continue
        due.append((command_id, intake.entry.data["callback_url"]))
    return due


async def deliver_pending(
    audit: AuditLog,
    *,
    secret: bytes,
    allowlist: tuple[AllowEntry, ...],
    now: datetime,
    client: Any = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[Delivery]:
    """One outbox pass: deliver every due result once and record each attempt."""
    records = [r async for r in audit.iter_records(AuditQuery(kind="ticket", since=now - LOOKBACK))]
    deliveries: list[Delivery] = []
    for rid, url in due_callbacks(records, max_attempts=max_attempts):
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
