"""The keep link's audit records (kind `keep`) and what they say: which devices are kept, and until when.

A keep is one record: who kept which device, until when, through which link (its digest, never the token),
and the re-enable it queued. A refused POST is one record too: why, and nothing about the device it claims
(an unverified token says nothing true). A GET records nothing: mail scanners open links.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.keep.token import KeepToken
from shared.models import Device
from shared.ports import AuditEntry, AuditLog, AuditQuery, AuditRecord

KIND = "keep"
ACTION = "keep"


def keep_entry(
    token: KeepToken, device: Device, owner: str, kept_until: datetime, requeue: Mapping[str, Any] | None
) -> AuditEntry:
    """The owner kept the device until `kept_until`; `requeue` names the re-enable queued (None: nothing to undo)."""
    return AuditEntry(
        kind=KIND,
        run_id=f"keep-{kept_until:%Y-%m-%d}",
        command_id=str(requeue["command_id"]) if requeue else None,
        device_object_id=device.id,
        device_id=device.device_id,
        display_name=device.display_name,
        decision="acted",
        action=ACTION,
        actor=owner,
        reason=f"kept by its owner {owner} until {kept_until:%Y-%m-%d}",
        data={
            "owner_id": token.owner_id,
            "kept_until": kept_until.isoformat(),
            "link": token.digest,
            "link_expires": token.expires.isoformat(),
            "requeued": dict(requeue) if requeue else None,
        },
    )


def refusal_entry(token: str, why: str, status: int) -> AuditEntry:
    """A keep that was refused: why, and a digest of what was sent (nothing it claims is trusted)."""
    return AuditEntry(
        kind=KIND,
        decision="blocked",
        action=ACTION,
        actor="anonymous",
        reason=f"keep link refused: {why}",
        data={"status": status, "sent": hashlib.sha256(token.encode(errors="replace")).hexdigest()[:16], "chars": len(token)},
    )


def kept_until(record: AuditRecord) -> datetime | None:
    """When an acted keep record's keep ends (None for refusals and unreadable records)."""
    entry = record.entry
    if entry.kind != KIND or entry.decision != "acted" or not entry.device_object_id:
        return None
    text = entry.data.get("kept_until")
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


async def kept_devices(audit: AuditLog, now: datetime, days: int, *, device: str | None = None) -> dict[str, datetime]:
    """Object id -> end of its keep, for the keeps still running at `now` (records of the last `days` days)."""
    kept: dict[str, datetime] = {}
    query = AuditQuery(kind=KIND, decision="acted", since=now - timedelta(days=days + 1), device=device)
    async for record in audit.iter_records(query):
        until = kept_until(record)
        object_id = record.entry.device_object_id
        if until is not None and object_id and until > now:
            kept[object_id] = max(until, kept.get(object_id, until))
    return kept


async def earlier_keep(audit: AuditLog, token: KeepToken, now: datetime, link_days: int) -> AuditRecord | None:
    """The keep this same link already recorded (a second click changes nothing)."""
    query = AuditQuery(kind=KIND, decision="acted", device=token.device_object_id, since=now - timedelta(days=link_days + 1))
    async for record in audit.iter_records(query):
        if record.entry.data.get("link") == token.digest:
            return record
    return None
