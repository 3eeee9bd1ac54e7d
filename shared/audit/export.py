"""CSV and JSON exports of audit records, written as they stream (a large export never sits in memory).

CSV: a header row, then one row per record in RECORD_FIELDS order, quoted by the csv module, `data` as
JSON text. A cell that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return; device names come from the tenant) is prefixed with an apostrophe. JSON: an array of objects, one
record per line, exact (use it to re-check hashes).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, Iterable
from typing import Any, TextIO

from shared.audit.codec import RECORD_FIELDS, record_to_dict
from shared.ports import AuditRecord

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One CSV cell: None empty, dicts as JSON text, formula-looking text defused."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(record: AuditRecord) -> list[str]:
    values = record_to_dict(record)
    return [csv_cell(values[name]) for name in RECORD_FIELDS]


def write_csv(records: Iterable[AuditRecord], out: TextIO, *, header: bool = True) -> int:
    """Write records as CSV; returns how many rows (without the header) were written."""
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(RECORD_FIELDS)
    count = 0
    for record in records:
        writer.writerow(csv_row(record))
        count += 1
    return count


def to_csv(records: Iterable[AuditRecord]) -> str:
    buffer = io.StringIO()
    write_csv(records, buffer)
    return buffer.getvalue()


def json_line(record: AuditRecord) -> str:
    return json.dumps(record_to_dict(record), ensure_ascii=False, separators=(",", ":"))


async def export(records: AsyncIterable[AuditRecord], out: TextIO, fmt: str) -> int:
    """Stream records to `out` as `csv` or `json`; returns the number of records."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(RECORD_FIELDS)
        async for record in records:
            writer.writerow(csv_row(record))
            count += 1
        return count
    if fmt != "json":
        raise ValueError(f"unknown export format {fmt!r}: use csv or json")
    out.write("[")
    async for record in records:
        out.write(("\n" if count == 0 else ",\n") + json_line(record))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
