"""Command leases on Azure Table Storage: one delivery of a command at a time across Function instances.

Service Bus keeps most copies apart (duplicate detection, the host renewing the message lock), but a copy
sent after the duplicate-detection window, or a lock that expired under a live instance, would let two
instances work on one command at once. The lease closes that gap in Azure as SqliteLease does locally
(same protocol and semantics: see lease.py).

Rows live in the budget's table (BUDGET_TABLE_NAME, in the audit log's storage account), partition
`lease`, one row per command (RowKey: SHA-256 of the command id, which may hold characters RowKeys may
not). Every change is conditioned on the ETag read just before (optimistic concurrency): when two
instances both find a lease free or expired, one conditional write wins and the other gets 409/412 and
reads again. Expiry is judged by this instance's clock; hosts keep theirs NTP-synchronised to well under
a second, small against the TTL (QUEUE_LOCK_SECONDS, a minute by default; the Service Bus lock is longer).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.errors import TransientError
from shared.tables import Row, Table

PARTITION = "lease"
#: Conditional writes lost in a row before `acquire` says "taken" (the caller polls again) or `renew` "lost".
MAX_RACES = 5
#: Leases of dead holders are deleted once they have been expired this long (each instance looks hourly).
FORGOTTEN_AFTER_SECONDS = 3600.0
_CONFLICT = (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError)


def row_key(command_id: str) -> str:
    return hashlib.sha256(command_id.encode()).hexdigest()


class TableLease:
    """CommandLease on a Table Storage table; safe across processes and hosts (ETag-conditioned writes)."""

    def __init__(self, table: Table, *, ttl: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl}")
        self._table = table
        self.ttl = float(ttl)
        self._clock = clock
        self._created = False
        self._swept_at: float | None = None

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None, *, ttl: float = 60.0) -> TableLease:
        from shared.worker.budget_table import budget_table_client

        return cls(budget_table_client(env), ttl=ttl)

    async def acquire(self, command_id: str, holder: str) -> bool:
        return await self._guarded(partial(self._acquire, command_id, holder))

    async def renew(self, command_id: str, holder: str) -> bool:
        return await self._guarded(partial(self._renew, command_id, holder))

    async def release(self, command_id: str, holder: str) -> None:
        await self._guarded(partial(self._release, command_id, holder))

    async def close(self) -> None:
        await self._table.close()

    async def _guarded[T](self, work: Callable[[], Awaitable[T]]) -> T:
        """The table being unreachable is transient, as the SQLite store being locked is."""
        try:
            await self._ensure_table()
            return await work()
        except AzureError as exc:
            raise TransientError(f"lease table {self._table.table_name!r} could not be used: {exc}") from exc

    async def _ensure_table(self) -> None:
        if not self._created:
            with contextlib.suppress(ResourceExistsError):
                await self._table.create_table()
            self._created = True

    async def _read(self, command_id: str) -> Row | None:
        try:
            return await self._table.get_entity(PARTITION, row_key(command_id))
        except ResourceNotFoundError:
            return None

    def _entity(self, command_id: str, holder: str) -> dict[str, Any]:
        expires = self._clock() + self.ttl
        return {"PartitionKey": PARTITION, "RowKey": row_key(command_id), "command_id": command_id, "holder": holder,
                "expires": float(expires)}

    async def _replace(self, current: Row, entity: dict[str, Any]) -> None:
        await self._table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )

    async def _acquire(self, command_id: str, holder: str) -> bool:
        """Take it when there is no row, the row is ours, or it expired; a lost race reads again."""
        for _ in range(MAX_RACES):
            current = await self._read(command_id)
            try:
                if current is None:
                    await self._table.create_entity(self._entity(command_id, holder))
                    return True
                if current["holder"] != holder and float(current["expires"]) > self._clock():
                    return False
                await self._replace(current, self._entity(command_id, holder))
                return True
            except _CONFLICT:
                continue  # another instance created, renewed, took or released it meanwhile
        return False

    async def _renew(self, command_id: str, holder: str) -> bool:
        """Extend while the row is still ours (expired but untaken counts, as in SqliteLease)."""
        for _ in range(MAX_RACES):
            current = await self._read(command_id)
            if current is None or current["holder"] != holder:
                return False
            try:
                await self._replace(current, self._entity(command_id, holder))
                return True
            except _CONFLICT:
                continue
        return False

    async def _release(self, command_id: str, holder: str) -> None:
        """Delete the row while it is ours. A changed row is read again: a renewal of our own heartbeat, cancelled
        on our side but carried out by the table, changes the ETag without making the lease anyone else's."""
        for _ in range(MAX_RACES):
            current = await self._read(command_id)
            if current is None or current["holder"] != holder:
                break  # gone, or taken over: not ours to delete
            try:
                await self._table.delete_entity(
                    PARTITION, current["RowKey"], etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
                break
            except ResourceNotFoundError:
                break
            except ResourceModifiedError:
                continue
        await self._sweep()

    async def _sweep(self) -> None:
        """Delete leases whose holder died long ago (once an hour per instance; best effort)."""
        now = self._clock()
        if self._swept_at is not None and now - self._swept_at < FORGOTTEN_AFTER_SECONDS:
            return
        self._swept_at = now
        query = "PartitionKey eq @partition and expires lt @before"
        found = self._table.query_entities(query, parameters={"partition": PARTITION, "before": now - FORGOTTEN_AFTER_SECONDS})
        async for entity in found:
            with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):  # renewed or gone meanwhile
                await self._table.delete_entity(
                    PARTITION, entity["RowKey"], etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
