"""The destructive-action budget: atomic per-run and per-day limits, idempotent per command, shared by workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared.worker.budget import MemoryBudget, SqliteBudget
from tests.worker.fakes import NOW


async def _contend(stores, *, per_run: int, per_day: int, commands: int, run_id: str = "run-1") -> int:
    """`commands` reservations spread over several store objects at once; returns how many were granted."""

    async def one(i: int) -> bool:
        store = stores[i % len(stores)]
        reservation = await store.reserve(command_id=f"c{i}", run_id=run_id, now=NOW, per_run=per_run, per_day=per_day)
        return reservation.granted

    return sum(await asyncio.gather(*(one(i) for i in range(commands))))


async def _check_store(stores) -> None:
    a = stores[0]
    first = await a.reserve(command_id="x", run_id="r", now=NOW, per_run=2, per_day=10)
    again = await a.reserve(command_id="x", run_id="r", now=NOW, per_run=2, per_day=10)
    assert first.granted and again.granted and (again.run_used, again.day_used) == (1, 1), "a redelivery is not counted twice"
    await a.reserve(command_id="y", run_id="r", now=NOW, per_run=2, per_day=10)
    refused = await a.reserve(command_id="z", run_id="r", now=NOW, per_run=2, per_day=10)
    assert not refused.granted and refused.scope == "run"
    other_run = await a.reserve(command_id="w", run_id="r2", now=NOW, per_run=2, per_day=3)
    assert other_run.granted and other_run.day_used == 3
    day_full = await a.reserve(command_id="v", run_id="r3", now=NOW, per_run=2, per_day=3)
    assert not day_full.granted and day_full.scope == "day"
    tomorrow = await a.reserve(command_id="v", run_id="r3", now=NOW + timedelta(days=1), per_run=2, per_day=3)
    assert tomorrow.granted and tomorrow.day_used == 1
    granted = await _contend(stores, per_run=1000, per_day=25, commands=60, run_id="busy")
    # 3 were already used on NOW's day... by other runs; the day limit holds across every store object
    assert granted == 25 - 3


async def test_memory_budget():
    store = MemoryBudget()
    await _check_store([store])


async def test_sqlite_budget_shared_by_several_workers(tmp_path):
    stores = [SqliteBudget(tmp_path / "budget.sqlite") for _ in range(3)]
    try:
        await _check_store(stores)
    finally:
        for store in stores:
            await store.close()


async def test_table_budget_on_azurite(azurite, azurite_table_name):
    from azure.data.tables.aio import TableClient

    from shared.worker.budget_table import TableBudget

    stores = [TableBudget(TableClient.from_connection_string(azurite.connection_string, table_name=azurite_table_name))
              for _ in range(3)]
    try:
        await _check_store(stores)
    finally:
        for store in stores:
            await store.close()


def test_open_budget_rejects_unknown_backend(monkeypatch):
    from shared.errors import ConfigError
    from shared.worker.budget import open_budget

    monkeypatch.setenv("AUDIT_BACKEND", "cosmos")
    with pytest.raises(ConfigError, match="AUDIT_BACKEND"):
        open_budget()
