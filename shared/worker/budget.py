"""The destructive-action budget: per run and per UTC day, shared by every worker, stored durably.

A tiny port with an atomic `reserve`: SQLite locally (one IMMEDIATE transaction), Azure Table Storage in
the cloud (counters in one partition per day, updated in one entity-group transaction guarded by ETags;
a lost race is retried). A reservation is keyed by command id, so a redelivered command that already
holds one is granted again without counting twice. Nothing is ever given back: a reservation whose write
failed still counts (the safe direction).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from shared import settings
from shared.batcher import Batcher
from shared.errors import TransientError
from shared.sqlite_wal import connect_wal
from shared.worker.gates import Reservation


class BudgetStore(Protocol):
    async def reserve(self, *, command_id: str, run_id: str, now: datetime, per_run: int, per_day: int) -> Reservation:
        """Take one unit from the run's and the day's budget, atomically, unless either is used up."""
        ...

    async def close(self) -> None: ...


#: One reservation request: command id, run id, now, per-run limit, per-day limit.
type _Request = tuple[str, str, datetime, int, int]


def _day(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


def _decide(run_used: int, day_used: int, per_run: int, per_day: int) -> tuple[bool, str]:
    if run_used >= per_run:
        return False, "run"
    if day_used >= per_day:
        return False, "day"
    return True, ""


class MemoryBudget:
    """In-process budget: report mode (a dry run must not spend the real budget) and tests."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._held: dict[str, tuple[str, str]] = {}
        self._lock = asyncio.Lock()

    async def reserve(self, *, command_id: str, run_id: str, now: datetime, per_run: int, per_day: int) -> Reservation:
        async with self._lock:
            run_key, day_key = f"run:{run_id}", f"day:{_day(now)}"
            if command_id in self._held:
                return Reservation(True, self._counts[run_key], self._counts[day_key], per_run, per_day)
            run_used, day_used = self._counts.get(run_key, 0), self._counts.get(day_key, 0)
            granted, scope = _decide(run_used, day_used, per_run, per_day)
            if granted:
                run_used, day_used = run_used + 1, day_used + 1
                self._counts[run_key], self._counts[day_key] = run_used, day_used
                self._held[command_id] = (run_key, day_key)
            return Reservation(granted, run_used, day_used, per_run, per_day, scope)

    async def close(self) -> None:
        return None


class SqliteBudget:
    """Budget counters in a SQLite file (JANITOR_DATA_DIR/budget.sqlite); safe across processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = connect_wal(self.path, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS counter (key TEXT PRIMARY KEY, used INTEGER NOT NULL)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS reservation (command_id TEXT PRIMARY KEY, run_key TEXT, day_key TEXT, at TEXT)"
        )
        self._group: Batcher[_Request, Reservation] = Batcher(self._commit, max_batch=1_000)

    def _reserve_group(self, requests: list[_Request]) -> list[Reservation]:
        """Several reservations in one transaction (one fsync), each decided in turn as if alone."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            out = [self._reserve_one(db, *request) for request in requests]
            db.execute("COMMIT")
            return out
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise TransientError(f"budget store {self.path} could not be written: {exc}") from exc

    @staticmethod
    def _reserve_one(
        db: sqlite3.Connection, command_id: str, run_id: str, now: datetime, per_run: int, per_day: int
    ) -> Reservation:
        run_key, day_key = f"run:{run_id}", f"day:{_day(now)}"
        held = db.execute("SELECT 1 FROM reservation WHERE command_id = ?", (command_id,)).fetchone()
        counts = dict(db.execute("SELECT key, used FROM counter WHERE key IN (?, ?)", (run_key, day_key)).fetchall())
        run_used, day_used = counts.get(run_key, 0), counts.get(day_key, 0)
        if held:
            return Reservation(True, run_used, day_used, per_run, per_day)
        granted, scope = _decide(run_used, day_used, per_run, per_day)
        if granted:
            run_used, day_used = run_used + 1, day_used + 1
            db.executemany(
                "INSERT INTO counter(key, used) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET used = excluded.used",
                ((run_key, run_used), (day_key, day_used)),
            )
            db.execute("INSERT INTO reservation VALUES(?, ?, ?, ?)", (command_id, run_key, day_key, now.isoformat()))
        return Reservation(granted, run_used, day_used, per_run, per_day, scope)

    async def reserve(self, *, command_id: str, run_id: str, now: datetime, per_run: int, per_day: int) -> Reservation:
        """Concurrent callers share one transaction (group commit); each gets its own answer."""
        return await self._group.submit((command_id, run_id, now, per_run, per_day))

    async def _commit(self, requests: Sequence[_Request]) -> list[Reservation]:
        return await asyncio.to_thread(self._reserve_group, list(requests))

    async def close(self) -> None:
        self._db.close()


def open_budget(env: Mapping[str, str] | None = None) -> BudgetStore:
    """The durable budget for the configured backend (the audit backend's storage: sqlite or table)."""
    backend = settings.choice("AUDIT_BACKEND", ("sqlite", "table"), env)
    if backend == "sqlite":
        return SqliteBudget(settings.data_dir(env) / "budget.sqlite")
    from shared.worker.budget_table import TableBudget

    return TableBudget.from_settings(env)
