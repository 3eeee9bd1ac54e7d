"""Command leases: at most one delivery works on a command at a time, across every worker process.

The audit log makes a redelivery idempotent once a decision is recorded, but two deliveries of one command
handled at the same moment (copies sent again after the queue's duplicate-detection window, or a lock that
expired under a live worker) would both read "nothing recorded yet" and both act. A lease closes that gap:
a delivery takes the command's lease before it reads the audit log and holds it (renewed in the
background) until its decision is recorded. A worker that dies simply stops renewing; its lease expires
after `ttl` seconds, which is no longer than the queue's lock, so the redelivery that follows finds it free.

The leases live where the budget lives (`open_lease`): locally a SQLite table shared by the processes of
`janitor work` (`JANITOR_DATA_DIR`); in Azure the budget's table, so Function instances keep apart too
(lease_table.py). Service Bus adds its own guard in front: duplicate detection (1 day) keeps most copies
out, and the Functions host renews the lock of a message while it is handled.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from shared import settings
from shared.errors import TransientError
from shared.sqlite_wal import connect_wal

LEASE_FILE = "leases.sqlite"


class CommandBusy(TransientError):
    """Another delivery of the same command held its lease for too long: retry this message later."""


class CommandLease(Protocol):
    ttl: float

    async def acquire(self, command_id: str, holder: str) -> bool:
        """Take the lease (free, expired, or already ours) for `ttl` seconds; False when another holder has it."""
        ...

    async def renew(self, command_id: str, holder: str) -> bool:
        """Extend our lease by `ttl`; False when it is no longer ours (it expired and was taken)."""
        ...

    async def release(self, command_id: str, holder: str) -> None: ...

    async def close(self) -> None: ...


class SqliteLease:
    """Leases in one SQLite file, safe across processes (each change is one IMMEDIATE transaction)."""

    def __init__(self, path: str | Path, *, ttl: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl}")
        self.path = Path(path)
        self.ttl = float(ttl)
        self._clock = clock
        db = connect_wal(self.path, timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS lease (command_id TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL)")
        self._db: sqlite3.Connection | None = db
        self._guard = threading.Lock()  # one connection: one transaction at a time in this process

    async def _run[T](self, work: Callable[[sqlite3.Connection, float], T]) -> T:
        def transaction() -> T:
            # The thread holds the connection for its whole transaction: a caller cancelled while its transaction
            # still runs (a lease heartbeat stopped at the end of a command) must not let the next one begin.
            with self._guard:
                db = self._db
                if db is None:
                    raise RuntimeError(f"lease store {self.path} is closed")
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(db, self._clock())
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                return result

        try:
            return await asyncio.to_thread(transaction)
        except sqlite3.Error as exc:
            raise TransientError(f"lease store {self.path} could not be used: {exc}") from exc

    async def acquire(self, command_id: str, holder: str) -> bool:
        def take(db: sqlite3.Connection, now: float) -> bool:
            row = db.execute("SELECT holder, expires FROM lease WHERE command_id = ?", (command_id,)).fetchone()
            if row is not None and row[0] != holder and row[1] > now:
                return False
            db.execute(
                "INSERT INTO lease VALUES (?, ?, ?) ON CONFLICT (command_id) DO UPDATE SET holder = excluded.holder,"
                " expires = excluded.expires",
                (command_id, holder, now + self.ttl),
            )
            return True

        return await self._run(take)

    async def renew(self, command_id: str, holder: str) -> bool:
        def extend(db: sqlite3.Connection, now: float) -> bool:
            sql = "UPDATE lease SET expires = ? WHERE command_id = ? AND holder = ?"  # taken over = holder changed
            return db.execute(sql, (now + self.ttl, command_id, holder)).rowcount == 1

        return await self._run(extend)

    async def release(self, command_id: str, holder: str) -> None:
        def drop(db: sqlite3.Connection, now: float) -> None:
            db.execute("DELETE FROM lease WHERE command_id = ? AND holder = ?", (command_id, holder))
            db.execute("DELETE FROM lease WHERE expires < ?", (now - 3600,))  # forgotten leases of dead workers

        await self._run(drop)

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def open_lease(env: Mapping[str, str] | None = None) -> CommandLease:
    """The lease store beside the budget (AUDIT_BACKEND): a SQLite file, or the budget's table in Azure.

    Its TTL is QUEUE_LOCK_SECONDS: a dead holder's lease is free again before its message's lock (the
    embedded queue's, or the longer Service Bus lock set in infra/) runs out and the message comes back.
    """
    ttl = settings.number("QUEUE_LOCK_SECONDS", env, minimum=0.001)
    if settings.choice("AUDIT_BACKEND", ("sqlite", "table"), env) == "sqlite":
        return SqliteLease(settings.data_dir(env) / LEASE_FILE, ttl=ttl)
    from shared.worker.lease_table import TableLease

    return TableLease.from_settings(env, ttl=ttl)
