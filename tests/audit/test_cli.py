"""`janitor audit list|export|verify|report` against the configured (SQLite) audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from janitor_cli import audit as audit_cli
from shared.audit import SqliteAuditLog
from shared.audit.codec import RECORD_FIELDS
from tests.audit.conftest import START, StepClock, fill


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke `janitor audit ...` on a filled SQLite log in the test's data dir; returns (invoke, records)."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("JANITOR_DATA_DIR", str(data_dir))

    async def setup() -> list:
        audit = SqliteAuditLog(data_dir / "audit.sqlite3", clock=StepClock(START, timedelta(minutes=7)))
        records = await fill(audit)
        await audit.close()
        return records

    records = asyncio.run(setup())
    app = typer.Typer()
    audit_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # keeps `audit` a sub-command group
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["audit", *args])

    return invoke, records, data_dir / "audit.sqlite3"


def test_list_prints_a_page_and_the_next_token(cli) -> None:
    invoke, records, _ = cli
    result = invoke("list", "--device", "DESKTOP-A1", "--limit", "2")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    expected = [r for r in records if r.entry.display_name == "DESKTOP-A1"]
    assert [line.split()[2] for line in lines] == [r.record_id for r in expected[:2]]
    assert "--continuation" in result.stderr
    token = result.stderr.split("--continuation ")[1].strip()
    rest = invoke("list", "--device", "DESKTOP-A1", "--limit", "50", "--continuation", token, "--json")
    assert [json.loads(line)["record_id"] for line in rest.stdout.splitlines()] == [r.record_id for r in expected[2:]]


def test_export_csv_and_json(cli, tmp_path: Path) -> None:
    invoke, records, _ = cli
    out = tmp_path / "blocked.csv"
    result = invoke("export", "--format", "csv", "--decision", "blocked", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == list(RECORD_FIELDS)
    assert [row[0] for row in rows[1:]] == [r.record_id for r in records if r.entry.decision == "blocked"]
    result = invoke("export", "--format", "json", "--run-id", "run-0302")
    assert [item["record_id"] for item in json.loads(result.stdout)] == [
        r.record_id for r in records if r.entry.run_id == "run-0302"
    ]


def test_excel_export_has_a_bom_and_every_cell_quoted(cli, tmp_path: Path) -> None:
    invoke, records, _ = cli
    out = tmp_path / "audit.csv"
    assert invoke("export", "--format", "excel", "--out", str(out)).exit_code == 0
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode()) and raw.count(b"\r\n") >= len(records) + 1
    assert raw.decode("utf-8-sig").startswith('"record_id","partition","seq"')


def test_verify_exit_codes(cli) -> None:
    invoke, records, path = cli
    result = invoke("verify")
    assert result.exit_code == 0 and f"intact: {len(records)} record(s) in 2 day(s)" in result.stdout
    assert f"newest {records[-1].record_id} hash {records[-1].hash}" in result.stdout
    target = records[4]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE records SET decision = 'acted' WHERE partition = ? AND seq = ?", (target.partition, target.seq))
    result = invoke("verify")
    assert result.exit_code == 1
    assert f"BROKEN at record {target.record_id}: hash mismatch" in result.stderr


def test_report_writes_one_html_file(cli, tmp_path: Path) -> None:
    invoke, _, _ = cli
    out = tmp_path / "night.html"
    result = invoke("report", "--out", str(out), "--from", "2025-03-01", "--to", "2025-03-02")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Hash chain intact." in page and 'id="destructive-table"' in page


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("list", "--decision", "nope"), "parameter 'decision' must be one of"),
        (("export", "--format", "xml"), "parameter 'format' must be one of json, csv"),
        (("verify", "--from", "soon"), "parameter 'from' must be a date"),
    ],
)
def test_bad_options_name_the_parameter(cli, args: tuple[str, ...], says: str) -> None:
    invoke, _, _ = cli
    result = invoke(*args)
    assert result.exit_code == 2 and says in result.stderr


def test_missing_setting_is_one_line(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke, _, _ = cli
    monkeypatch.setenv("AUDIT_BACKEND", "table")
    result = invoke("list")
    assert result.exit_code == 2 and "AUDIT_TABLE_ENDPOINT" in result.stderr and "Traceback" not in result.output
