"""CSV and JSON exports of audit records, written as they stream (a large export never sits in memory).

CSV: a header row, then one row per record in RECORD_FIELDS order, quoted by the csv module, `data` as
JSON text. Device names and reasons come from the tenant and from tickets, so every cell is defused for
spreadsheets: wherever a formula could begin (the start of the cell, or after any separator a spreadsheet
may split on: `,` `;` tab `|` or a line break, since a semicolon locale ignores the commas and the quoting),
a formula start (= + - @, also fullwidth) gets an apostrophe in front. In `data`, separators inside JSON
strings are written as \\u escapes (the same JSON), so its only separators are JSON's own commas, and the
negative numbers after them are left alone. `excel` is the same CSV for double-clicking into Excel: a
UTF-8 byte order mark and every cell quoted. JSON: an array of objects, one record per line, exact (use it
to re-check hashes).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterable, Iterable
from typing import Any, TextIO

from shared.audit.codec import RECORD_FIELDS, record_to_dict
from shared.ports import AuditRecord

FORMATS: tuple[str, ...] = ("json", "csv", "excel")
#: Where a spreadsheet may start a new cell (splitting on a separator it chose, or a new row).
SEPARATORS = ",;\t|\r\n"
#: A piece of a cell between separators, after the spaces and quotes an importer may drop before it.
_PIECE = re.compile(r"(^|[" + re.escape(SEPARATORS) + r"])([ \u00a0\"]*)([^" + re.escape(SEPARATORS) + r"]*)")
_FORMULA = re.compile(r"[=+\-@\uff1d\uff0b\uff0d\uff20]")
_JSON_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[\]}]*")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ESCAPED_IN_STRINGS = str.maketrans({",": "\\u002c", ";": "\\u003b", "|": "\\u007c"})
BOM = "\ufeff"


def defuse(text: str, *, json_numbers: bool = False) -> str:
    """`text` with an apostrophe before every formula start at the cell's start or after a separator (with
    `json_numbers`, a JSON number after a separator is left as it is)."""

    def piece(match: re.Match[str]) -> str:
        separator, spaces, rest = match.groups()
        if not _FORMULA.match(rest) or (json_numbers and _JSON_NUMBER.fullmatch(rest)):
            return match.group(0)
        return f"{separator}{spaces}'{rest}"

    if text.startswith(("\t", "\r")):  # a cell that starts with one is read as a formula by some spreadsheets
        text = "'" + text
    return _PIECE.sub(piece, text)


def json_cell(value: Any) -> str:
    """JSON text whose strings hold no separator (written as \\u escapes): the same JSON, defused."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return defuse(_JSON_STRING.sub(lambda m: m.group().translate(_ESCAPED_IN_STRINGS), text), json_numbers=True)


def csv_cell(value: Any) -> str:
    """One CSV cell: None empty, dicts and lists as JSON text, formula-looking text defused."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json_cell(value)
    return defuse(str(value))


def csv_row(record: AuditRecord) -> list[str]:
    values = record_to_dict(record)
    return [csv_cell(values[name]) for name in RECORD_FIELDS]


def _csv_line(cells: Iterable[str], fmt: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL if fmt == "excel" else csv.QUOTE_MINIMAL).writerow(cells)
    return buffer.getvalue()


def csv_header(fmt: str = "csv") -> str:
    """The first line of a `csv` or `excel` export (`excel`: after a byte order mark)."""
    return (BOM if fmt == "excel" else "") + _csv_line(RECORD_FIELDS, fmt)


def csv_line(record: AuditRecord, fmt: str = "csv") -> str:
    """One record as a CSV line, CRLF-terminated."""
    return _csv_line(csv_row(record), fmt)


def to_csv(records: Iterable[AuditRecord], fmt: str = "csv") -> str:
    """Records as CSV text (`csv` or `excel`), header included."""
    return csv_header(fmt) + "".join(csv_line(record, fmt) for record in records)


def json_line(record: AuditRecord) -> str:
    return json.dumps(record_to_dict(record), ensure_ascii=False, separators=(",", ":"))


async def export(records: AsyncIterable[AuditRecord], out: TextIO, fmt: str) -> int:
    """Stream records to `out` as `csv`, `excel` or `json`; returns the number of records."""
    count = 0
    if fmt in ("csv", "excel"):
        out.write(csv_header(fmt))
        async for record in records:
            out.write(csv_line(record, fmt))
            count += 1
        return count
    if fmt != "json":
        raise ValueError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
    out.write("[")
    async for record in records:
        out.write(("\n" if count == 0 else ",\n") + json_line(record))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
