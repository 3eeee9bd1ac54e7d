"""The budget on Azure Table Storage: optimistic concurrency with ETags, one entity-group transaction.

Partition `budget-<UTC day>` holds the day counter (RowKey `day`), each run's counter (`run-<run id>`) and
one row per reservation (`cmd-<command id>`). A reservation creates its row and updates both counters in
one transaction, each update conditioned on the ETag read just before; if another worker got there first
the transaction fails as a whole and is retried with fresh counters. A run that crosses midnight starts a
new per-run count in the new day's partition (the scan's breaker already caps a run's destructive commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared import settings
from shared.errors import TransientError
from shared.identity import azure_credential
from shared.tables import Operation, Row, Table, open_table
from shared.worker.gates import Reservation

MAX_RACES = 50


def _safe_key(value: str) -> str:
    """RowKeys may not contain / \\ # ?."""
    return "".join("_" if ch in "/\\#?" else ch for ch in value)


def budget_table_client(env: Mapping[str, str] | None = None) -> Table:
    """The budget's table (BUDGET_TABLE_NAME) in the audit log's storage account; command leases live there too."""
    name = settings.require("BUDGET_TABLE_NAME", env)
    conn = settings.get("AUDIT_TABLE_CONNECTION_STRING", env)
    if conn:
        return open_table(conn, name)
    endpoint = settings.url("AUDIT_TABLE_ENDPOINT", env)
    return open_table(endpoint, name, credential=azure_credential(env))


class TableBudget:
    def __init__(self, table: Table) -> None:
        self._table = table
        self._created = False

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None) -> TableBudget:
        return cls(budget_table_client(env))

    async def _ensure_table(self) -> None:
        if not self._created:
            with contextlib.suppress(ResourceExistsError):
                await self._table.create_table()
            self._created = True

    async def _get(self, partition: str, row: str) -> Row | None:
        try:
            return await self._table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    async def reserve(self, *, command_id: str, run_id: str, now: datetime, per_run: int, per_day: int) -> Reservation:
        try:
            await self._ensure_table()
            return await self._reserve(command_id, run_id, now, per_run, per_day)
        except AzureError as exc:
            raise TransientError(f"budget table could not be written: {exc}") from exc

    async def _reserve(self, command_id: str, run_id: str, now: datetime, per_run: int, per_day: int) -> Reservation:
        partition = f"budget-{now.strftime('%Y-%m-%d')}"
        run_row, cmd_row = _safe_key(f"run-{run_id}"), _safe_key(f"cmd-{command_id}")
        for _attempt in range(MAX_RACES):
            day = await self._get(partition, "day")
            run = await self._get(partition, run_row)
            day_used = int(day["used"]) if day else 0
            run_used = int(run["used"]) if run else 0
            if await self._get(partition, cmd_row) is not None:
                return Reservation(True, run_used, day_used, per_run, per_day)
            if run_used >= per_run:
                return Reservation(False, run_used, day_used, per_run, per_day, "run")
            if day_used >= per_day:
                return Reservation(False, run_used, day_used, per_run, per_day, "day")
            ops: list[Operation] = [("create", {"PartitionKey": partition, "RowKey": cmd_row, "run_id": run_id})]
            for row, entity, used in (("day", day, day_used), (run_row, run, run_used)):
                new = {"PartitionKey": partition, "RowKey": row, "used": used + 1}
                if entity is None:
                    ops.append(("create", new))
                else:
                    etag = entity.metadata["etag"]
                    ops.append(
                        (
                            "update",
                            new,
                            {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified},
                        )
                    )
            try:
                await self._table.submit_transaction(ops)
            except TableTransactionError:
                await asyncio.sleep(random.uniform(0.005, 0.05))  # another worker won the race: read again
                continue
            return Reservation(True, run_used + 1, day_used + 1, per_run, per_day)
        raise TransientError(f"budget table: {MAX_RACES} concurrent-update races lost in a row; retry later")

    async def close(self) -> None:
        await self._table.close()
