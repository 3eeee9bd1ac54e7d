"""`janitor demo` end to end (small fleet): report night, enforce night, and how to read the audit log."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from janitor_cli import _register_all, app
from shared.audit import SqliteAuditLog
from shared.ports import AuditQuery


def test_demo_reports_then_enforces(tmp_path):
    _register_all()
    data_dir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--devices", "600", "--seed", "3", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "night 1" in out and "night 2" in out and "mode report" in out and "mode enforce" in out
    assert "janitor audit list" in out and "janitor audit report" in out and str(data_dir) in out

    async def decisions() -> dict[str, set[str]]:
        log = SqliteAuditLog(data_dir / "audit.sqlite3")
        try:
            seen: dict[str, set[str]] = {}
            async for record in log.iter_records(AuditQuery(kind="decision")):
                seen.setdefault(record.entry.run_id or "", set()).add(record.entry.decision or "")
            return seen
        finally:
            await log.close()

    by_run = asyncio.run(decisions())
    report_night, enforce_night = sorted(by_run)  # run ids start with the scan time: night 1 sorts first
    assert "dry_run" in by_run[report_night] and "acted" not in by_run[report_night]
    assert "acted" in by_run[enforce_night]
