"""The hash chain, in one pure module shared by both audit adapters and by verification.

Each record's hash is sha256 over a canonical JSON encoding of (partition, seq, at, entry, prev_hash).
The chain runs through the days: the first record of a day links to the last record of the previous day
that has records (or to GENESIS), so editing, deleting or reordering a record, and deleting a whole day in
the middle, all break it. Each day also has a head (its last seq and hash) so deleting records at the end
of a day is caught too. Someone who can rewrite the store and recompute every hash can forge a chain: the
chain proves integrity against edits, not authorship (see docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec

from shared.ports import AuditEntry, AuditRecord, ChainBreak

#: prev_hash of the very first record of a log.
GENESIS = "0" * 64
#: Version of the canonical encoding (part of what is hashed, so a future change cannot be confused).
ENCODING_VERSION = 1
#: `data` larger than this (JSON characters) is replaced by a truncation marker before hashing.
MAX_DATA_CHARS = 200_000
#: Longest text kept in `reason`; the other text fields are limited to MAX_FIELD_CHARS.
MAX_REASON_CHARS = 8_000
MAX_FIELD_CHARS = 1_024
TRUNCATED_SUFFIX = "…[truncated]"

ENTRY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditEntry))
#: The entry's text fields, in field order; `data` is the last field.
TEXT_FIELDS: tuple[str, ...] = ENTRY_FIELDS[:-1]
if ENTRY_FIELDS[-1] != "data":
    raise RuntimeError("AuditEntry.data must stay its last field (stores build entries positionally)")


@dataclass(frozen=True, slots=True)
class Head:
    """The last record of a day as the store's head entry says it is (seq and hash)."""

    partition: str
    seq: int
    hash: str


# --------------------------------------------------------------------------- time and naming


def utc(at: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def format_at(at: datetime) -> str:
    """Fixed-width UTC text with microseconds: sorts as text the way it sorts as time."""
    return utc(at).isoformat(timespec="microseconds")[:26] + "Z"


def parse_at(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is UTC else utc(at)


def partition_of(at: datetime) -> str:
    """The UTC day (YYYY-MM-DD) a record written at `at` belongs to."""
    return utc(at).date().isoformat()


def day_start(partition: str) -> datetime:
    return datetime.combine(date.fromisoformat(partition), time(), tzinfo=UTC)


def next_partition(partition: str) -> str:
    return (date.fromisoformat(partition) + timedelta(days=1)).isoformat()


def record_id(partition: str, seq: int) -> str:
    return f"{partition}:{seq:010d}"


def parse_record_id(value: str) -> tuple[str, int]:
    """(partition, seq) of a record id; ValueError when it is not one."""
    partition, _, seq = value.partition(":")
    date.fromisoformat(partition)
    if len(seq) != 10 or not seq.isdigit():
        raise ValueError(f"not a record id: {value!r}")
    return partition, int(seq)


# --------------------------------------------------------------------------- normalising entries


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED_SUFFIX)] + TRUNCATED_SUFFIX


def normalize_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` as plain JSON values (datetimes as ISO text, structs as dicts, NaN as null), truncated when too large.

    Raises TypeError when it cannot be expressed as JSON (a bug in the caller, not an outage).
    """
    text = msgspec.json.encode(msgspec.to_builtins(dict(data), str_keys=True)).decode()
    if len(text) > MAX_DATA_CHARS:
        return {
            "_truncated": True,
            "original_chars": len(text),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "preview": text[:2_000],
        }
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def normalize_entry(entry: AuditEntry) -> AuditEntry:
    """The entry as it will be stored and hashed: text fields clipped, data plain JSON."""
    changes: dict[str, Any] = {"data": normalize_data(entry.data)}
    for name in TEXT_FIELDS:
        value = getattr(entry, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"AuditEntry.{name} must be text, not {type(value).__name__}")
        limit = MAX_REASON_CHARS if name == "reason" else MAX_FIELD_CHARS
        clipped = _clip(value, limit)
        if clipped is not value:
            changes[name] = clipped
    if not entry.kind:
        raise ValueError("AuditEntry.kind is required")
    return replace(entry, **changes)


def entry_to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in ENTRY_FIELDS}


def entry_from_dict(values: Mapping[str, Any]) -> AuditEntry:
    known: dict[str, Any] = {name: values.get(name) for name in ENTRY_FIELDS}
    known["data"] = dict(known["data"] or {})
    if known["actor"] is None:
        known["actor"] = "entra-janitor"
    return AuditEntry(**known)


# --------------------------------------------------------------------------- hashing


def canonical(partition: str, seq: int, at: datetime, entry: AuditEntry, prev_hash: str) -> bytes:
    """The exact bytes that are hashed: sorted-key compact JSON, UTF-8."""
    document = {
        "v": ENCODING_VERSION,
        "partition": partition,
        "seq": seq,
        "at": format_at(at),
        "entry": entry_to_dict(entry),
        "prev_hash": prev_hash,
    }
    return json.dumps(document, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def compute_hash(partition: str, seq: int, at: datetime, entry: AuditEntry, prev_hash: str) -> str:
    return hashlib.sha256(canonical(partition, seq, at, entry, prev_hash)).hexdigest()


def seal(partition: str, seq: int, at: datetime, entry: AuditEntry, prev_hash: str) -> AuditRecord:
    """Build the stored record for an already normalised entry."""
    return AuditRecord(
        partition=partition,
        seq=seq,
        record_id=record_id(partition, seq),
        at=utc(at),
        entry=entry,
        prev_hash=prev_hash,
        hash=compute_hash(partition, seq, at, entry, prev_hash),
    )


def next_position(head: Head | None, head_at: datetime | None, now: datetime) -> tuple[str, int, datetime, str]:
    """Where the next record goes after `head`: (partition, seq, at, prev_hash).

    `at` never goes backwards (a clock behind the head's is clamped to it), so days only move forward.
    """
    at = utc(now)
    if head_at is not None and at < head_at:
        at = head_at
    if head is None:
        return partition_of(at), 1, at, GENESIS
    day = partition_of(at)
    if day == head.partition:
        return day, head.seq + 1, at, head.hash
    if day < head.partition:  # the head's day is ahead of this clock: continue there
        return head.partition, head.seq + 1, max(at, day_start(head.partition)), head.hash
    return day, 1, at, head.hash


# --------------------------------------------------------------------------- verification


class ChainWalker:
    """Walks records oldest first (partition, then seq) and reports where the chain is broken.

    Fed by the adapters: `start(partition, head)` before each day's records, `record(r)` for each one,
    `unreadable(...)` for a stored row that cannot even be decoded, then `finish()`. At most one break is
    reported per record, and a record is checked against its stored neighbours, so one edit yields one break.
    """

    def __init__(self, previous_hash: str = GENESIS, previous_partition: str | None = None) -> None:
        self._last_hash = previous_hash
        self._last_partition = previous_partition
        self._partition: str | None = None
        self._head: Head | None = None
        self._seq = 0
        self._skip_link = False  # the previous row was unreadable: its hash is unknown
        self.breaks: list[ChainBreak] = []
        self.records = 0
        self.partitions = 0
        self.tip: tuple[str, str] | None = None  # (record id, hash) of the newest record walked

    def start(self, partition: str, head: Head | None = None) -> None:
        self._close_partition()
        self._partition = partition
        self._head = head
        self._seq = 0
        self.partitions += 1

    def set_head(self, head: Head | None) -> None:
        """The current day's head, when the store yields it after the day's records."""
        self._head = head

    def unreadable(self, partition: str, seq: int, problem: str) -> None:
        self.breaks.append(ChainBreak(partition, seq, f"unreadable record ({problem})"))
        self._seq = seq
        self._skip_link = True

    def record(self, rec: AuditRecord) -> None:
        self.records += 1
        problem = self._problem(rec)
        if problem:
            self.breaks.append(ChainBreak(rec.partition, rec.seq, problem))
        self._seq = rec.seq
        self._last_hash = rec.hash
        self._skip_link = False
        self.tip = (rec.record_id, rec.hash)

    def finish(self) -> list[ChainBreak]:
        self._close_partition()
        self._partition = None
        return self.breaks

    def _problem(self, rec: AuditRecord) -> str | None:
        expected_seq = self._seq + 1
        if rec.seq > expected_seq:
            missing = f"seq {expected_seq}" if rec.seq == expected_seq + 1 else f"seq {expected_seq}-{rec.seq - 1}"
            return f"{missing} missing (record deleted)"
        if rec.seq < expected_seq:
            return f"seq {rec.seq} out of order after seq {self._seq} (records reordered)"
        if rec.record_id != record_id(rec.partition, rec.seq):
            return f"record id {rec.record_id!r} does not match its position"
        if partition_of(rec.at) != rec.partition:
            return f"timestamp {format_at(rec.at)} is outside its day (record moved or edited)"
        if compute_hash(rec.partition, rec.seq, rec.at, rec.entry, rec.prev_hash) != rec.hash:
            return "hash mismatch (record edited or moved)"
        if rec.prev_hash != self._last_hash and not self._skip_link:
            if rec.seq == 1:
                before = f"the last record of {self._last_partition}" if self._last_partition else "the genesis value"
                return f"prev_hash does not match {before} (a day or records before it deleted or reordered)"
            return f"prev_hash does not match seq {rec.seq - 1} (records reordered, inserted or deleted)"
        return None

    def _close_partition(self) -> None:
        if self._partition is None:
            return
        head = self._head
        if head is not None and head.seq != self._seq:
            if head.seq > self._seq:
                problem = f"day head says seq {head.seq} but the last record is seq {self._seq} (records at the end deleted)"
            else:
                problem = f"records after the day head's seq {head.seq} (head rolled back or records inserted)"
            self.breaks.append(ChainBreak(self._partition, self._seq + 1 if head.seq > self._seq else self._seq, problem))
        elif head is not None and self._seq and head.hash != self._last_hash:
            self.breaks.append(ChainBreak(self._partition, self._seq, "day head hash does not match the last record"))
        if self._seq:
            self._last_partition = self._partition
