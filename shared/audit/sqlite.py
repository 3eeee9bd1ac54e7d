"""Embedded audit log: one SQLite file (WAL), for local runs and the demo.

Appends from any number of processes are serialised by `BEGIN IMMEDIATE`, so the chain never forks; each
append also moves its day's head row in the same transaction. Every query filter has an index that ends in
the (partition, seq) key, so a filtered page comes straight off an index in chain order. The blocking
SQLite calls run in a worker thread so they never stall the event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.audit.chain import (
    GENESIS,
    TEXT_FIELDS,
    ChainWalker,
    Head,
    format_at,
    next_position,
    normalize_entry,
    parse_at,
    record_id,
    seal,
)
from shared.audit.codec import decode_continuation
from shared.audit.matching import EXACT_FILTERS, device_key, is_empty, partition_range
from shared.audit.paging import PagedAuditLog, page_of
from shared.batcher import Batcher
from shared.errors import AuditUnavailable
from shared.ports import AuditEntry, AuditPage, AuditQuery, AuditRecord
from shared.sqlite_wal import connect_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    partition TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    run_id TEXT,
    command_id TEXT,
    ticket TEXT,
    device_object_id TEXT,
    device_id TEXT,
    display_name TEXT,
    decision TEXT,
    action TEXT,
    reason TEXT,
    actor TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    name_key TEXT,
    oid_key TEXT,
    did_key TEXT,
    PRIMARY KEY (partition, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_at ON records (at);
CREATE INDEX IF NOT EXISTS records_run ON records (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_command ON records (command_id) WHERE command_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_ticket ON records (ticket) WHERE ticket IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_decision ON records (decision) WHERE decision IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_action ON records (action) WHERE action IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_kind ON records (kind);
CREATE INDEX IF NOT EXISTS records_name ON records (name_key) WHERE name_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_oid ON records (oid_key) WHERE oid_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_did ON records (did_key) WHERE did_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS heads (
    partition TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    at TEXT NOT NULL
) WITHOUT ROWID;
"""

_ENTRY_COLUMNS = TEXT_FIELDS  # in AuditEntry's field order, so rows construct entries positionally
_COLUMNS = ("partition", "seq", "at", *_ENTRY_COLUMNS, "data", "prev_hash", "hash")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM records"
_INSERT = (
    f"INSERT INTO records ({', '.join(_COLUMNS)}, name_key, oid_key, did_key) VALUES ({', '.join('?' * (len(_COLUMNS) + 3))})"
)
_MAX_LIMIT = 10_000


def _row_values(record: AuditRecord) -> tuple[Any, ...]:
    entry = record.entry
    return (
        record.partition,
        record.seq,
        format_at(record.at),
        *(getattr(entry, name) for name in _ENTRY_COLUMNS),
        json.dumps(entry.data, ensure_ascii=False, separators=(",", ":")),
        record.prev_hash,
        record.hash,
        device_key(entry.display_name),
        device_key(entry.device_object_id),
        device_key(entry.device_id),
    )


_DATA = 3 + len(_ENTRY_COLUMNS)


def _row_record(row: Sequence[Any]) -> AuditRecord:
    partition, seq = row[0], row[1]
    entry = AuditEntry(*row[3:_DATA], data=json.loads(row[_DATA]))
    if not isinstance(entry.data, dict):
        raise TypeError(f"data is not a JSON object: {row[_DATA][:40]!r}")
    return AuditRecord(partition, seq, record_id(partition, seq), parse_at(row[2]), entry, row[-2], row[-1])


def _where(query: AuditQuery, after: tuple[str, int] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    first, last = partition_range(query)
    if first is not None:
        clauses.append("partition >= ?")
        params.append(first)
    if last is not None:
        clauses.append("partition <= ?")
        params.append(last)
    if query.since is not None:
        clauses.append("at >= ?")
        params.append(format_at(query.since))
    if query.until is not None:
        clauses.append("at < ?")
        params.append(format_at(query.until))
    for name in EXACT_FILTERS:
        value = getattr(query, name)
        if value is not None:
            clauses.append(f"{name} = ?")
            params.append(value)
    if query.device is not None:
        clauses.append("(name_key = ? OR oid_key = ? OR did_key = ?)")
        params.extend([device_key(query.device)] * 3)
    if after is not None:
        clauses.append("(partition, seq) > (?, ?)")
        params.extend(after)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class SqliteAuditLog(PagedAuditLog):
    """Append-only, hash-chained audit log in one SQLite file (created on first use)."""

    PAGE_SIZE = 5_000

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 15.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._group: Batcher[AuditEntry, AuditRecord] = Batcher(self._commit, max_batch=1_000)

    def __repr__(self) -> str:
        return f"SqliteAuditLog({str(self.path)!r})"

    # ------------------------------------------------------------------ connection

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect_wal(self.path, timeout=self._busy_timeout)
            try:
                conn.execute("PRAGMA synchronous=FULL")  # an acknowledged append survives power loss
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _run[T](self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._connect())

        try:
            return await asyncio.to_thread(locked)
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
            raise AuditUnavailable(f"audit log {self.path} cannot be used: {exc}") from exc

    # ------------------------------------------------------------------ append

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Durably append one entry; AuditUnavailable when the file cannot be written.

        Concurrent appends share one transaction (group commit): each returns once its record is on disk.
        """
        return await self._group.submit(normalize_entry(entry))

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Append several entries in one transaction (all or none), in order."""
        normalized = [normalize_entry(entry) for entry in entries]
        return await self._commit(normalized) if normalized else []

    async def _commit(self, normalized: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Write normalised entries in one transaction."""

        def work(conn: sqlite3.Connection) -> list[AuditRecord]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT partition, seq, hash, at FROM heads ORDER BY partition DESC LIMIT 1").fetchone()
                head = Head(row[0], row[1], row[2]) if row else None
                head_at = parse_at(row[3]) if row else None
                records: list[AuditRecord] = []
                for entry in normalized:
                    partition, seq, at, prev = next_position(head, head_at, self._clock())
                    record = seal(partition, seq, at, entry, prev)
                    records.append(record)
                    head, head_at = Head(partition, seq, record.hash), record.at
                conn.executemany(_INSERT, [_row_values(r) for r in records])
                for partition in dict.fromkeys(r.partition for r in records):
                    last = next(r for r in reversed(records) if r.partition == partition)
                    conn.execute(
                        "INSERT INTO heads (partition, seq, hash, at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (partition) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at",
                        (partition, last.seq, last.hash, format_at(last.at)),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return records

        return await self._run(work)

    # ------------------------------------------------------------------ queries

    async def query(self, query: AuditQuery, *, limit: int = 500, continuation: str | None = None) -> AuditPage:
        """One page of matching records, oldest first; pass `continuation` back for the next."""
        limit = max(1, min(int(limit), _MAX_LIMIT))
        after = decode_continuation(continuation) if continuation else None
        if is_empty(query):
            return AuditPage([], None)
        where, params = _where(query, after)
        sql = f"{_SELECT}{where} ORDER BY partition, seq LIMIT ?"

        def work(conn: sqlite3.Connection) -> list[AuditRecord]:
            return [_row_record(row) for row in conn.execute(sql, [*params, limit + 1])]

        records = await self._run(work)
        return page_of(records, limit)

    # ------------------------------------------------------------------ verification

    async def verify_walk(self, since: datetime | None = None, until: datetime | None = None) -> ChainWalker:
        """Like verify, but returns the walker (with record and day counts) before `finish()`."""
        first, last = partition_range(AuditQuery(since=since, until=until))

        def work(conn: sqlite3.Connection) -> ChainWalker:
            previous = None
            if first is not None:
                previous = conn.execute(
                    "SELECT partition, hash FROM heads WHERE partition < ? ORDER BY partition DESC LIMIT 1", (first,)
                ).fetchone()
            walker = ChainWalker(previous[1] if previous else GENESIS, previous[0] if previous else None)
            heads = {
                row[0]: Head(row[0], row[1], row[2])
                for row in conn.execute(
                    "SELECT partition, seq, hash FROM heads WHERE partition >= ? AND partition <= ?",
                    (first or "", last or "9999-99-99"),
                )
            }
            days = sorted(
                set(heads)
                | {
                    row[0]
                    for row in conn.execute(
                        "SELECT DISTINCT partition FROM records WHERE partition >= ? AND partition <= ?",
                        (first or "", last or "9999-99-99"),
                    )
                }
            )
            for day in days:
                walker.start(day, heads.get(day))
                for row in conn.execute(f"{_SELECT} WHERE partition = ? ORDER BY seq", (day,)):
                    try:
                        record = _row_record(row)
                    except (ValueError, TypeError, KeyError) as exc:
                        walker.unreadable(day, int(row[1]), str(exc))
                        continue
                    walker.record(record)
            return walker

        return await self._run(work)

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(work)
