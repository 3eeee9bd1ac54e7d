"""Audit tests run the same cases on both adapters: SQLite (a temp file) and Table Storage (Azurite).

`store` is parametrized over the two; it hands out audit logs on one store (several may be open at once,
like several workers) and tampers with the raw rows the way someone with write access to the store could.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient, UpdateMode

from shared import bootstrap
from shared.audit import SqliteAuditLog, TableAuditLog
from shared.ports import AuditEntry, AuditLog, AuditRecord
from tests.fixtures.azurite import Azurite

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "audit"


class StepClock:
    """A clock that moves `step` forward at each reading (appends land where the test wants them)."""

    def __init__(self, start: datetime, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@dataclass
class Store:
    """One audit store and raw access to its rows, for one test."""

    backend: str
    open: Callable[..., AuditLog]
    clock: StepClock
    path: Path | None = None
    azurite: Azurite | None = None
    table: str | None = None
    opened: list[AuditLog] = field(default_factory=list)

    def log(self, **kwargs: Any) -> AuditLog:
        audit = self.open(clock=kwargs.pop("clock", self.clock), **kwargs)
        self.opened.append(audit)
        return audit

    # -- raw tampering, as someone with write access to the store could do it

    def _sql(self, sql: str, *params: Any) -> None:
        assert self.path is not None
        with sqlite3.connect(self.path) as conn:
            conn.execute(sql, params)

    def _table(self) -> TableClient:
        assert self.azurite is not None and self.table is not None
        return TableClient.from_connection_string(self.azurite.connection_string, table_name=self.table)

    def edit(self, partition: str, seq: int, **values: str) -> None:
        if self.backend == "sqlite":
            for name, value in values.items():
                self._sql(f"UPDATE records SET {name} = ? WHERE partition = ? AND seq = ?", value, partition, seq)
            return
        with self._table() as client:
            entity = client.get_entity(partition, f"{seq:010d}")
            entity.update(values)
            client.update_entity(entity, mode=UpdateMode.REPLACE)

    def delete(self, partition: str, seq: int) -> None:
        if self.backend == "sqlite":
            self._sql("DELETE FROM records WHERE partition = ? AND seq = ?", partition, seq)
            return
        with self._table() as client:
            client.delete_entity(partition, f"{seq:010d}")

    def delete_day(self, partition: str) -> None:
        """Remove a whole day: its records and its head."""
        if self.backend == "sqlite":
            self._sql("DELETE FROM records WHERE partition = ?", partition)
            self._sql("DELETE FROM heads WHERE partition = ?", partition)
            return
        with self._table() as client:
            for entity in list(client.query_entities(f"PartitionKey eq '{partition}'")):
                client.delete_entity(entity["PartitionKey"], entity["RowKey"])

    def swap(self, partition: str, a: int, b: int) -> None:
        """Exchange two records' positions (each keeps its content and hash)."""
        if self.backend == "sqlite":
            self._sql("UPDATE records SET seq = -1 WHERE partition = ? AND seq = ?", partition, a)
            self._sql("UPDATE records SET seq = ? WHERE partition = ? AND seq = ?", a, partition, b)
            self._sql("UPDATE records SET seq = ? WHERE partition = ? AND seq = -1", b, partition)
            return
        with self._table() as client:
            first = client.get_entity(partition, f"{a:010d}")
            second = client.get_entity(partition, f"{b:010d}")
            first["RowKey"], second["RowKey"] = second["RowKey"], first["RowKey"]
            client.upsert_entity(first, mode=UpdateMode.REPLACE)
            client.upsert_entity(second, mode=UpdateMode.REPLACE)

    def raw_data(self, partition: str, seq: int) -> Any:
        """The stored `data` column/properties as the store holds them."""
        if self.backend == "sqlite":
            assert self.path is not None
            with sqlite3.connect(self.path) as conn:
                row = conn.execute("SELECT data FROM records WHERE partition=? AND seq=?", (partition, seq)).fetchone()
                return json.loads(row[0])
        with self._table() as client:
            return dict(client.get_entity(partition, f"{seq:010d}"))


START = datetime(2025, 3, 1, 22, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "table"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, azurite_table_name: str) -> AsyncIterator[Store]:
    clock = StepClock(START, timedelta(minutes=7))
    if request.param == "sqlite":
        path = tmp_path / "audit.sqlite3"
        made = Store("sqlite", lambda **kw: SqliteAuditLog(path, **kw), clock, path=path)
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        conn = azurite.connection_string
        made = Store(
            "table",
            lambda **kw: TableAuditLog(conn, azurite_table_name, retry_total=0, **kw),
            clock,
            azurite=azurite,
            table=azurite_table_name,
        )
    yield made
    for audit in made.opened:
        await audit.close()


def sample_entries() -> list[AuditEntry]:
    """A night's worth of records of every kind, across two runs and a ticket, with awkward text."""
    entries: list[AuditEntry] = []
    for run_no, run_id in enumerate(("run-0301", "run-0302")):
        entries.append(
            AuditEntry(
                kind="run",
                run_id=run_id,
                data={
                    "devices_scanned": 1200 + run_no,
                    "findings": {"stale": 3, "pending": 2, "duplicate": 1},
                    "commands_enqueued": 6,
                    "halted": run_no == 1,
                    "halt_reason": "blast radius: 40% of devices selected (limit 5%)" if run_no == 1 else None,
                    "policy_hash": "ab12cd34ef56",
                },
            )
        )
        for i in range(6):
            name = ["DESKTOP-A1", "desktop-b2", 'LAPTOP,"Q"', "=cmd|calc", "Kiosk\nLobby", "iPhone de Zoë"][i]
            action = ["disable", "delete", "tag", "disable", "notify", "delete"][i]
            decision = ["acted", "blocked", "acted", "dry_run", "skipped", "deferred"][(i + run_no) % 6]
            common = dict(
                run_id=run_id,
                command_id=f"{run_id}-cmd{i}",
                device_object_id=f"0000000{i}-aaaa-bbbb-cccc-{run_no:012d}",
                device_id=f"DDDDDDD{i}-1111-2222-3333-{run_no:012d}",
                display_name=name,
                action=action,
            )
            if decision == "acted":
                entries.append(AuditEntry(kind="intent", **common, data={"call": f"PATCH /devices/{i}"}))
                entries.append(AuditEntry(kind="outcome", **common, data={"status": 204, "request_id": f"req-{run_no}-{i}"}))
            entries.append(
                AuditEntry(
                    kind="decision",
                    decision=decision,
                    reason=f"stale for {90 + i} days, last sign-in unknown",
                    ticket="INC-42" if i == 1 else None,
                    data={
                        "device_class": ["stale", "expired_disabled", "stale", "duplicate", "pending", "stale"][i],
                        "gates": [
                            {"name": "kill_switch", "passed": True, "reason": "off"},
                            {"name": "bitlocker", "passed": decision != "blocked", "reason": "2 recovery keys"},
                        ],
                        "evidence": {"approximateLastSignInDateTime": "2024-11-01T00:00:00Z", "trustType": "AzureAd"},
                    },
                    **common,
                )
            )
    entries.append(
        AuditEntry(
            kind="ticket",
            ticket="INC-42",
            display_name="desktop-b2",
            reason="user reports device cannot get a PRT",
            data={
                "request": "delete and re-register",
                "diagnosis": {"stage": "registration", "summary": "device not registered"},
            },
        )
    )
    return entries


async def fill(audit: AuditLog, entries: list[AuditEntry] | None = None) -> list[AuditRecord]:
    return [await audit.append(entry) for entry in (entries or sample_entries())]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless Chromium (installed by `make test` from Debian's chromium-headless-shell)."""
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no headless Chromium found: run `make test` (installs Debian chromium-headless-shell as root)", pytrace=False)


@pytest.fixture
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS


@pytest.fixture(params=["sqlite", "table"])
async def configured(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_table_name: str):
    """Settings pointing the app at a filled audit log of each backend."""
    clock = StepClock(START, timedelta(minutes=7))
    audit: AuditLog
    if request.param == "sqlite":
        data_dir = tmp_path / "data"
        monkeypatch.setenv("JANITOR_DATA_DIR", str(data_dir))
        audit = SqliteAuditLog(data_dir / "audit.sqlite3", clock=clock)
    else:
        azurite = request.getfixturevalue("azurite")
        monkeypatch.setenv("AUDIT_BACKEND", "table")
        monkeypatch.setenv("AUDIT_TABLE_CONNECTION_STRING", azurite.connection_string)
        monkeypatch.setenv("AUDIT_TABLE_NAME", azurite_table_name)
        audit = TableAuditLog(azurite.connection_string, azurite_table_name, clock=clock)
    records = await fill(audit)
    await audit.close()
    yield records
    await bootstrap.close_shared()  # the Function's audit log is the process's: closed once, at the end
