"""Records as plain dicts (JSON export, the HTTP API) and the opaque continuation token.

The token names the position after which the next page starts (partition, seq), so both adapters hand out
the same tokens for the same query and a token stays valid whatever the filters' relative times resolve to.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from shared.audit.chain import ENTRY_FIELDS, entry_from_dict, format_at, parse_at, record_id
from shared.ports import AuditRecord

#: Column order of exports and API answers.
RECORD_FIELDS: tuple[str, ...] = ("record_id", "partition", "seq", "at", *ENTRY_FIELDS, "prev_hash", "hash")

_TOKEN_VERSION = 1
#: Record ids carry a 10-digit seq: a token past it was not handed out (and overflows the stores' integers).
MAX_SEQ = 9_999_999_999


def record_to_dict(record: AuditRecord) -> dict[str, Any]:
    """A JSON-ready dict, fields in RECORD_FIELDS order."""
    out: dict[str, Any] = {"record_id": record.record_id, "partition": record.partition, "seq": record.seq}
    out["at"] = format_at(record.at)
    for name in ENTRY_FIELDS:
        out[name] = getattr(record.entry, name)
    out["data"] = dict(record.entry.data)
    out["prev_hash"] = record.prev_hash
    out["hash"] = record.hash
    return out


def record_from_dict(values: Mapping[str, Any]) -> AuditRecord:
    """The inverse of record_to_dict (for JSON exports read back)."""
    partition, seq = str(values["partition"]), int(values["seq"])
    return AuditRecord(
        partition=partition,
        seq=seq,
        record_id=str(values.get("record_id") or record_id(partition, seq)),
        at=parse_at(str(values["at"])),
        entry=entry_from_dict(values),
        prev_hash=str(values["prev_hash"]),
        hash=str(values["hash"]),
    )


def encode_continuation(partition: str, seq: int) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "p": partition, "s": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str) -> tuple[str, int]:
    """(partition, seq) from a token; ValueError saying what is wrong otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        if body.get("v") != _TOKEN_VERSION:
            raise ValueError
        partition, seq = str(body["p"]), int(body["s"])
        date.fromisoformat(partition)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):  # OverflowError: int(1e400)
        raise ValueError("is not a continuation token returned by this API (pass it back unchanged)") from None
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError("is not a continuation token returned by this API (pass it back unchanged)")
    return partition, seq
