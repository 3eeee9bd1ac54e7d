"""Where a chaos run keeps its queue, audit log, budget and leases: the embedded SQLite files, or the Azure adapters.

    async with open_stores(config, workdir) as stores: ...

- `sqlite`: the embedded queue, SQLite audit log, budget and leases in the run's data directory (what
  `janitor work` uses); the audit outage is the audit file's write lock held from another connection.
- `azure`: the Service Bus adapter against the loopback AMQP test broker (peek-lock, duplicate detection,
  dead-lettering, max delivery count), the Table audit log, the Table budget and the Table command lease
  on a private Azurite (what the Function App uses in Azure). No audit outage is injected here: stopping
  the storage emulator would stop the budget and the leases too.

Both give the worker processes their settings, the scan its sender and audit log, the supervisor the
queue's depth, and the checks the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.audit import SqliteAuditLog
from shared.ports import AuditLog, DeadLetter, QueueSender
from shared.queue import SqliteQueue
from tests.chaos.worker_main import AUDIT_FILE
from tests.support.amqp_broker import AmqpTestBroker

if TYPE_CHECKING:
    from tests.chaos.harness import ChaosConfig, Tally

QUEUE_FILE = "queue.sqlite3"
QUEUE_NAME = "remediation-commands"
BACKENDS = ("sqlite", "azure")


class Stores(Protocol):
    """What the harness needs from a backend."""

    env: dict[str, str]  # the worker processes' settings for the queue, audit log, budget and leases

    def audit(self) -> AuditLog: ...

    def sender(self) -> QueueSender: ...

    async def held(self) -> int:
        """Messages the queue still holds: waiting, locked or scheduled (not completed, not dead-lettered)."""
        ...

    async def dead_letters(self) -> list[DeadLetter]: ...

    async def audit_outage(self, seconds: float, tally: Tally) -> None:
        """Make the audit store unwritable for `seconds` (recorded in `tally`); a no-op where not possible."""
        ...

    async def describe(self) -> dict[str, Any]:
        """What the run left in the stores beyond the audit log and the dead letters (for the report)."""
        ...

    async def close(self) -> None: ...


@dataclass
class SqliteStores:
    data_dir: Path
    config: ChaosConfig
    _inspector: SqliteQueue | None = None  # one connection for the supervisor's frequent looks

    @property
    def env(self) -> dict[str, str]:
        return {"QUEUE_BACKEND": "sqlite", "AUDIT_BACKEND": "sqlite"}

    def audit(self) -> AuditLog:
        return SqliteAuditLog(self.data_dir / AUDIT_FILE)

    def _queue(self) -> SqliteQueue:
        return SqliteQueue(self.data_dir / QUEUE_FILE, lock_seconds=self.config.lock_seconds,
                           max_deliveries=self.config.max_deliveries)

    def sender(self) -> QueueSender:
        return self._queue()

    def _inspect(self) -> SqliteQueue:
        if self._inspector is None:
            self._inspector = self._queue()
        return self._inspector

    async def held(self) -> int:
        counts = await asyncio.to_thread(self._inspect().counts)
        return counts["active"] + counts["locked"] + counts["scheduled"]

    async def dead_letters(self) -> list[DeadLetter]:
        return list(self._inspect().dead_letters())

    async def describe(self) -> dict[str, Any]:
        return {"backend": "sqlite", "data_files": sorted(p.name for p in self.data_dir.glob("*.sqlite*"))}

    async def close(self) -> None:
        if self._inspector is not None:
            await self._inspector.close()

    async def audit_outage(self, seconds: float, tally: Tally) -> None:
        lock = _audit_write_lock(self.data_dir / AUDIT_FILE)
        await asyncio.to_thread(lock.__enter__)
        started = time.monotonic()
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(lock.__exit__, None, None, None)
            tally.audit_outages += 1
            tally.audit_outage_seconds += round(time.monotonic() - started, 2)


@contextlib.contextmanager
def _audit_write_lock(path: Path) -> Iterator[None]:
    """Hold the audit file's write lock from another connection: every append fails until released."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@dataclass
class AzureStores:
    """The Function App's adapters: Service Bus (the loopback AMQP broker) and Table Storage (Azurite)."""

    broker: AmqpTestBroker
    table_connection_string: str
    data_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "QUEUE_BACKEND": "servicebus",
            "SERVICEBUS_CONNECTION_STRING": self.broker.connection_string,
            "SERVICEBUS_QUEUE_NAME": QUEUE_NAME,
            "AUDIT_BACKEND": "table",
            "AUDIT_TABLE_CONNECTION_STRING": self.table_connection_string,
            "AUDIT_TABLE_NAME": "chaosaudit",
            "BUDGET_TABLE_NAME": "chaosbudget",  # also the command leases' table
        }

    def audit(self) -> AuditLog:
        from shared.audit import open_audit_log

        return open_audit_log(self.env)

    def sender(self) -> QueueSender:
        from shared.queue import open_sender

        return open_sender(self.env)

    async def held(self) -> int:
        return len(self.broker.queue(QUEUE_NAME).messages)

    async def dead_letters(self) -> list[DeadLetter]:
        queue = self.broker.queue(QUEUE_NAME)
        return [
            DeadLetter(
                message_id=d.message.message_id or "",
                body=d.message.body,
                reason=d.reason or "",
                description=d.description or "",
                delivery_count=d.message.deliveries,
                dead_lettered_at=datetime.now(UTC),
            )
            for d in list(queue.dead_letters)
        ]

    async def audit_outage(self, seconds: float, tally: Tally) -> None:
        return None

    async def describe(self) -> dict[str, Any]:
        """Budget reservations and leases left in the budget's table, the broker's counters, and proof that
        nothing fell back to the embedded stores (no SQLite file in the data directory)."""
        from azure.data.tables.aio import TableClient

        from shared.worker.lease_table import PARTITION

        rows: list[str] = []
        async with TableClient.from_connection_string(self.table_connection_string, self.env["BUDGET_TABLE_NAME"]) as table:
            rows = [f"{e['PartitionKey']}/{e['RowKey']}" async for e in table.list_entities(select=["PartitionKey", "RowKey"])]
        queue = self.broker.queue(QUEUE_NAME)
        return {
            "backend": "azure",
            "data_files": sorted(p.name for p in self.data_dir.glob("*.sqlite*")),
            "budget_reservations": sum("/cmd-" in row for row in rows),
            "leases_left": sum(row.startswith(f"{PARTITION}/") for row in rows),
            "broker_completed": len(queue.completed),
            "broker_duplicates_dropped": queue.duplicates_dropped,
            "broker_settlements_after_lock_expiry": queue.stale_settlements,
        }

    async def close(self) -> None:
        return None


@contextlib.asynccontextmanager
async def open_stores(config: ChaosConfig, workdir: Path, data_dir: Path) -> AsyncIterator[Stores]:
    """The run's stores; for `azure`, a private Azurite and AMQP broker that stop when the run ends."""
    if config.backend == "sqlite":
        stores = SqliteStores(data_dir, config)
        try:
            yield stores
        finally:
            await stores.close()
        return
    if config.backend != "azure":
        raise ValueError(f"unknown chaos backend {config.backend!r}; choose one of {BACKENDS}")
    from tests.fixtures.azurite import azurite_process

    broker = AmqpTestBroker(lock_seconds=config.lock_seconds, max_delivery_count=config.max_deliveries).start()
    try:
        with azurite_process(workdir / "azurite") as azurite:
            yield AzureStores(broker, azurite.connection_string, data_dir)
    finally:
        broker.stop()
