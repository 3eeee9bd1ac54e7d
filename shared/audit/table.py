"""Audit log in Azure Table Storage (azure-data-tables, async), used in Azure.

Layout: PartitionKey = UTC day, RowKey = seq zero-padded to 10 digits. Each day has a head entity
(RowKey `~head`: last seq, hash, time, sealed) and the table has a pointer to the latest day
(`~meta`/`~latest`); rows whose RowKey starts with `~` are bookkeeping, never records.

Appending inserts the record and moves the head in one entity-group transaction, the head guarded by its
ETag: of two concurrent appenders one wins and the other re-reads the head and retries, so the chain never
forks. A new day starts by sealing the previous day's head (ETag-guarded too), so no late record can slip
into a day after the next day has linked to its last hash. `data` is JSON text split over `data`,
`data_1`, ... properties of at most 15,000 characters each (Table's 64 KiB property limit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.audit.chain import (
    GENESIS,
    TEXT_FIELDS,
    ChainWalker,
    Head,
    day_start,
    format_at,
    next_partition,
    next_position,
    normalize_entry,
    parse_at,
    partition_of,
    record_id,
    seal,
)
from shared.audit.codec import decode_continuation
from shared.audit.matching import DEVICE_FIELDS, EXACT_FILTERS, device_key, is_empty, partition_range
from shared.audit.paging import PagedAuditLog, page_of
from shared.batcher import Batcher
from shared.errors import AuditUnavailable
from shared.ports import AuditEntry, AuditPage, AuditQuery, AuditRecord
from shared.tables import Operation, Row, Table, open_table

log = logging.getLogger(__name__)

HEAD_ROW = "~head"
META_PARTITION = "~meta"
LATEST_ROW = "~latest"
DATA_CHUNK_CHARS = 15_000  # <= 30,000 UTF-16 units: under the 64 KiB string property limit
_ENTRY_PROPS = TEXT_FIELDS
_KEY_PROPS = {"display_name": "k_name", "device_object_id": "k_oid", "device_id": "k_did"}
_MAX_OPS = 99  # a transaction holds at most 100 operations: records plus the head
_MAX_TX_BYTES = 3_500_000  # a transaction's body is limited to 4 MiB
_LOOKBACK_DAYS = 31
_MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class _HeadState:
    head: Head
    at: datetime
    sealed: bool
    etag: str | None


def _record_entity(record: AuditRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": record.partition, "RowKey": f"{record.seq:010d}", "at": format_at(record.at)}
    for name in _ENTRY_PROPS:
        value = getattr(record.entry, name)
        if value is not None:
            entity[name] = value
    for name, key in _KEY_PROPS.items():
        value = getattr(record.entry, name)
        if value is not None:
            entity[key] = device_key(value)
    text = json.dumps(record.entry.data, ensure_ascii=False, separators=(",", ":"))
    chunks = [text[i : i + DATA_CHUNK_CHARS] for i in range(0, len(text), DATA_CHUNK_CHARS)] or [""]
    entity["data"] = chunks[0]
    for index, chunk in enumerate(chunks[1:], start=1):
        entity[f"data_{index}"] = chunk
    entity["data_parts"] = len(chunks)
    entity["prev_hash"] = record.prev_hash
    entity["hash"] = record.hash
    return entity


def _entity_record(entity: Row) -> AuditRecord:
    partition, row = entity["PartitionKey"], entity["RowKey"]
    seq = int(row)
    parts = int(entity.get("data_parts", 1))
    text = entity["data"] + "".join(entity[f"data_{i}"] for i in range(1, parts))
    values: dict[str, Any] = {name: entity.get(name) for name in _ENTRY_PROPS}
    if values["actor"] is None:
        values["actor"] = "entra-janitor"
    return AuditRecord(
        partition=partition,
        seq=seq,
        record_id=record_id(partition, seq),
        at=parse_at(entity["at"]),
        entry=AuditEntry(**values, data=json.loads(text)),
        prev_hash=entity["prev_hash"],
        hash=entity["hash"],
    )


def _head_state(entity: Row) -> _HeadState:
    head = Head(entity["PartitionKey"], int(entity["seq"]), entity["hash"])
    etag = getattr(entity, "metadata", {}).get("etag")
    return _HeadState(head, parse_at(entity["at"]), bool(entity.get("sealed", False)), etag)


def _head_entity(head: Head, at: datetime, sealed: bool = False) -> dict[str, Any]:
    keys = {"PartitionKey": head.partition, "RowKey": HEAD_ROW}
    return {**keys, "seq": head.seq, "hash": head.hash, "at": format_at(at), "sealed": sealed}


def _size(record: AuditRecord) -> int:
    return 4 * len(json.dumps(record.entry.data, ensure_ascii=False)) + 4 * len(record.entry.reason or "") + 4_096


def _lit(value: str) -> str:
    """An OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _filter(query: AuditQuery, after: tuple[str, int] | None) -> str:
    """OData filter: partition bounds first, so the service reads only the days the range covers."""
    clauses = ["RowKey lt '~'"]
    first, last = partition_range(query)
    if first is not None:
        clauses.append(f"PartitionKey ge {_lit(first)}")
    clauses.append(f"PartitionKey le {_lit(last)}" if last is not None else "PartitionKey lt '~'")
    if query.since is not None:
        clauses.append(f"at ge {_lit(format_at(query.since))}")
    if query.until is not None:
        clauses.append(f"at lt {_lit(format_at(query.until))}")
    for name in EXACT_FILTERS:
        value = getattr(query, name)
        if value is not None:
            clauses.append(f"{name} eq {_lit(value)}")
    if query.device is not None:
        key = _lit(device_key(query.device) or "")
        clauses.append("(" + " or ".join(f"{_KEY_PROPS[name]} eq {key}" for name in DEVICE_FIELDS) + ")")
    if after is not None:
        p, r = _lit(after[0]), _lit(f"{after[1]:010d}")
        clauses.append(f"(PartitionKey gt {p} or (PartitionKey eq {p} and RowKey gt {r}))")
    return " and ".join(clauses)


class TableAuditLog(PagedAuditLog):
    """Append-only, hash-chained audit log in one Azure table.

    `account` is a Table endpoint (https://<account>.table.core.windows.net, used with `credential`) or a
    connection string (Azurite and local runs). Extra keywords go to the TableClient (e.g. retry_total).
    """

    def __init__(
        self,
        account: str,
        table: str,
        *,
        credential: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        conflict_timeout: float = 30.0,
        **client_kwargs: Any,
    ) -> None:
        self._account = account
        self.table = table
        self._credential = credential
        self._clock = clock
        self._conflict_timeout = conflict_timeout
        self._client_kwargs = client_kwargs
        self._client: Table | None = None
        self._head: _HeadState | None = None  # cached latest head (its ETag proves it is still current)
        self._table_ready = False
        self._group: Batcher[AuditEntry, AuditRecord] = Batcher(self._commit, max_batch=_MAX_OPS)

    def __repr__(self) -> str:
        where = self._account if self._account.startswith("http") else "connection string"
        return f"TableAuditLog({where!r}, {self.table!r})"

    # ------------------------------------------------------------------ client

    def _table_client(self) -> Table:
        if self._client is None:
            self._client = open_table(self._account, self.table, credential=self._credential, **self._client_kwargs)
        return self._client

    async def _ensure_table(self) -> Table:
        client = self._table_client()
        if not self._table_ready:
            try:
                await client.create_table()
            except ResourceExistsError:
                pass
            except HttpResponseError as exc:
                if exc.status_code != 403:  # no right to create it: it may exist (infra creates it in Azure)
                    raise
            self._table_ready = True
        return client

    def _unavailable(self, exc: Exception) -> AuditUnavailable:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return AuditUnavailable(f"audit table {self.table!r} cannot be used: {message}")

    # ------------------------------------------------------------------ heads

    async def _get_head(self, client: Table, partition: str) -> _HeadState | None:
        try:
            return _head_state(await client.get_entity(partition, HEAD_ROW))
        except ResourceNotFoundError:
            return None

    async def _latest_head(self, client: Table) -> _HeadState | None:
        """The head of the newest day, found with a few point reads (a scan only for a log with no pointer)."""
        try:
            pointer: str | None = (await client.get_entity(META_PARTITION, LATEST_ROW))["day"]
        except ResourceNotFoundError:
            pointer = None
        if pointer is None:
            return await self._scan_heads(client, before=None)
        today = partition_of(self._clock())
        start = max(today, pointer)
        state = await self._get_head(client, start)
        if state is None:
            state = await self._previous_head(client, start, stop=pointer)
        while state is not None and state.sealed:  # a newer day exists (or is being started)
            newer = await self._get_head(client, next_partition(state.head.partition))
            if newer is None:
                break
            state = newer
        return state

    async def _previous_head(self, client: Table, partition: str, stop: str | None = None) -> _HeadState | None:
        """Head of the newest day before `partition` (point reads back to `stop`, then a scan)."""
        checked = date.fromisoformat(partition)
        for _ in range(_LOOKBACK_DAYS):
            day = checked - timedelta(days=1)
            if stop is not None and day.isoformat() < stop:
                break
            state = await self._get_head(client, day.isoformat())
            if state is not None:
                return state
            checked = day
        return await self._scan_heads(client, before=checked.isoformat())

    async def _scan_heads(self, client: Table, before: str | None) -> _HeadState | None:
        latest = None
        query = f"RowKey eq {_lit(HEAD_ROW)} and PartitionKey lt {_lit(before or '~')}"
        async for entity in client.query_entities(query):
            latest = entity
        return _head_state(latest) if latest is not None else None

    async def _seal(self, client: Table, state: _HeadState) -> None:
        await client.update_entity(
            _head_entity(state.head, state.at, sealed=True),
            mode=UpdateMode.REPLACE,
            etag=state.etag,
            match_condition=MatchConditions.IfNotModified,
        )

    async def _advance_pointer(self, client: Table, day: str) -> None:
        """Point `~latest` at `day` unless it already points later (best effort: a stale pointer costs reads)."""
        for _ in range(5):
            try:
                current = await client.get_entity(META_PARTITION, LATEST_ROW)
            except ResourceNotFoundError:
                try:
                    await client.create_entity({"PartitionKey": META_PARTITION, "RowKey": LATEST_ROW, "day": day})
                    return
                except ResourceExistsError:
                    continue
            if current["day"] >= day:
                return
            try:
                await client.update_entity(
                    {"PartitionKey": META_PARTITION, "RowKey": LATEST_ROW, "day": day},
                    mode=UpdateMode.REPLACE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return
            except ResourceModifiedError:
                continue

    # ------------------------------------------------------------------ append

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Durably append one entry; AuditUnavailable when the table cannot be written.

        Concurrent appends share one transaction (group commit) instead of racing for the head's ETag.
        """
        return await self._group.submit(normalize_entry(entry))

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Append in order, up to 99 records per transaction (each transaction is all or none; a batch
        crossing midnight or 3.5 MB takes one more). On an error, earlier transactions stay written."""
        pending = [normalize_entry(entry) for entry in entries]
        written: list[AuditRecord] = []
        while pending:
            batch = await self._commit(pending)
            written.extend(batch)
            pending = pending[len(batch) :]
        return written

    async def _commit(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Write a prefix of normalised entries in one transaction; returns its records."""
        try:
            return await self._append_batch(await self._ensure_table(), entries)
        except AzureError as exc:
            self._head = None
            raise self._unavailable(exc) from exc

    def _plan(self, state: _HeadState | None, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """The records of one transaction after `state`: one day, at most 99 records and ~3.5 MB."""
        floor = None
        if state is not None and state.sealed:  # that day is closed: continue on the next one
            floor = day_start(next_partition(state.head.partition))
        head, head_at = (state.head, state.at) if state else (None, None)
        records: list[AuditRecord] = []
        size = 0
        for entry in entries[:_MAX_OPS]:
            now = self._clock()
            partition, seq, at, prev = next_position(head, head_at, max(now, floor) if floor else now)
            if records and partition != records[0].partition:
                break
            record = seal(partition, seq, at, entry, prev)
            size += _size(record)
            if records and size > _MAX_TX_BYTES:
                break
            records.append(record)
            head, head_at = Head(partition, seq, record.hash), record.at
        return records

    async def _append_batch(self, client: Table, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """One transaction: records plus the head, retried on ETag/insert conflicts with fresh heads."""
        deadline = time.monotonic() + self._conflict_timeout
        attempt = 0
        while True:
            attempt += 1
            state = self._head or await self._latest_head(client)
            records = self._plan(state, entries)
            new_day = state is None or records[0].partition != state.head.partition
            last = records[-1]
            new_head = _head_entity(Head(last.partition, last.seq, last.hash), last.at)
            operations: list[Operation] = [("create", _record_entity(r)) for r in records]
            if new_day or state is None:  # (state None is always a new day)
                operations.append(("create", new_head))
            else:
                options = {"mode": UpdateMode.REPLACE, "etag": state.etag, "match_condition": MatchConditions.IfNotModified}
                operations.append(("update", new_head, options))
            try:
                if new_day and state is not None and not state.sealed:
                    await self._seal(client, state)
                result = await client.submit_transaction(operations)
            except (TableTransactionError, ResourceModifiedError, ResourceExistsError) as exc:
                if exc.status_code not in (409, 412) or time.monotonic() > deadline:
                    raise
                self._head = None  # someone else appended: re-read the head and try again
                await asyncio.sleep(random.uniform(0.002, 0.01) * min(attempt, 10))
                continue
            etag = result[-1].get("etag") if result else None  # without it, re-read the head next time
            self._head = _HeadState(Head(last.partition, last.seq, last.hash), last.at, False, etag) if etag else None
            if new_day:
                try:
                    await self._advance_pointer(client, last.partition)
                except AzureError as exc:  # the records are written; the pointer is only a hint
                    log.warning("audit: could not advance the latest-day pointer to %s: %s", last.partition, exc)
            return records

    # ------------------------------------------------------------------ queries

    async def query(self, query: AuditQuery, *, limit: int = 500, continuation: str | None = None) -> AuditPage:
        """One page of matching records, oldest first; pass `continuation` back for the next."""
        limit = max(1, min(int(limit), _MAX_LIMIT))
        after = decode_continuation(continuation) if continuation else None
        if is_empty(query):
            return AuditPage([], None)
        odata = _filter(query, after)
        records: list[AuditRecord] = []
        try:
            client = self._table_client()
            pages = client.query_entities(odata, results_per_page=min(1_000, limit + 1))
            async for entity in pages:
                records.append(_entity_record(entity))
                if len(records) > limit:
                    break
        except ResourceNotFoundError:  # no table yet: nothing was ever written
            return AuditPage([], None)
        except AzureError as exc:
            raise self._unavailable(exc) from exc
        return page_of(records, limit)

    # ------------------------------------------------------------------ verification

    async def verify_walk(self, since: datetime | None = None, until: datetime | None = None) -> ChainWalker:
        """Like verify, but returns the walker (with record and day counts) before `finish()`."""
        first, last = partition_range(AuditQuery(since=since, until=until))
        clauses = ["PartitionKey lt '~'"]
        if first is not None:
            clauses.append(f"PartitionKey ge {_lit(first)}")
        if last is not None:
            clauses.append(f"PartitionKey le {_lit(last)}")
        try:
            client = self._table_client()
            previous = await self._previous_head(client, first) if first is not None else None
            walker = ChainWalker(previous.head.hash if previous else GENESIS, previous.head.partition if previous else None)
            current: str | None = None
            async for entity in client.query_entities(" and ".join(clauses), results_per_page=1_000):
                partition, row = entity["PartitionKey"], entity["RowKey"]
                if partition != current:
                    walker.start(partition)
                    current = partition
                if row == HEAD_ROW:
                    try:
                        walker.set_head(_head_state(entity).head)
                    except (ValueError, TypeError, KeyError) as exc:
                        walker.unreadable(partition, 0, f"day head: {exc}")
                    continue
                try:
                    record = _entity_record(entity)
                except (ValueError, TypeError, KeyError) as exc:
                    walker.unreadable(partition, int(row) if row.isdigit() else 0, str(exc))
                    continue
                walker.record(record)
        except ResourceNotFoundError:
            return ChainWalker()
        except AzureError as exc:
            raise self._unavailable(exc) from exc
        return walker

    async def close(self) -> None:
        """Close the table client; the credential is the caller's (the process's, see shared.bootstrap)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
