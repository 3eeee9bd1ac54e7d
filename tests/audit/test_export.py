"""CSV and JSON exports: a header and one row per record, proper quoting, and exact, re-checkable JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

from shared.audit import SqliteAuditLog
from shared.audit.chain import compute_hash
from shared.audit.codec import RECORD_FIELDS, record_from_dict
from shared.audit.export import export, to_csv
from shared.ports import AuditQuery
from tests.audit.conftest import START, StepClock, fill


async def _records(tmp_path: Path) -> list:
    audit = SqliteAuditLog(tmp_path / "a.sqlite3", clock=StepClock(START, timedelta(minutes=7)))
    records = await fill(audit)
    await audit.close()
    return records


async def test_csv_has_a_header_and_one_properly_quoted_row_per_record(tmp_path: Path) -> None:
    records = await _records(tmp_path)
    text = to_csv(records)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(RECORD_FIELDS)
    assert len(rows) == len(records) + 1
    assert all(len(row) == len(RECORD_FIELDS) for row in rows)
    by_id = {row[0]: dict(zip(RECORD_FIELDS, row, strict=True)) for row in rows[1:]}
    for record in records:
        row = by_id[record.record_id]
        assert json.loads(row["data"]) == record.entry.data
        assert row["hash"] == record.hash and row["at"].endswith("Z")
    names = {row["display_name"] for row in by_id.values()}
    assert 'LAPTOP,"Q"' in names  # comma and quotes survive quoting
    assert "Kiosk\nLobby" in names  # so does a newline inside a cell
    assert "'=cmd|calc" in names and "=cmd|calc" not in names  # a formula is defused for spreadsheets
    assert '"LAPTOP,""Q"""' in text  # the csv module's quoting, doubled quotes


async def test_json_export_is_exact_and_the_hashes_recheck(tmp_path: Path) -> None:
    records = await _records(tmp_path)
    audit = SqliteAuditLog(tmp_path / "a.sqlite3")
    out = io.StringIO()
    assert await export(audit.iter_records(AuditQuery()), out, "json") == len(records)
    await audit.close()
    loaded = [record_from_dict(item) for item in json.loads(out.getvalue())]
    assert loaded == records
    for record in loaded:
        assert compute_hash(record.partition, record.seq, record.at, record.entry, record.prev_hash) == record.hash


async def test_empty_exports_are_still_valid(tmp_path: Path) -> None:
    audit = SqliteAuditLog(tmp_path / "empty.sqlite3")
    out_json, out_csv = io.StringIO(), io.StringIO()
    assert await export(audit.iter_records(AuditQuery()), out_json, "json") == 0
    assert await export(audit.iter_records(AuditQuery()), out_csv, "csv") == 0
    await audit.close()
    assert json.loads(out_json.getvalue()) == []
    assert list(csv.reader(io.StringIO(out_csv.getvalue()))) == [list(RECORD_FIELDS)]
