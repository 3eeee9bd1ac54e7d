"""GET /api/audit, called as the Functions host would call it (a func.HttpRequest), on both backends."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import azure.functions as func
import pytest

from functions.audit_api import audit_query
from shared import bootstrap
from shared.audit import SqliteAuditLog
from shared.audit.codec import RECORD_FIELDS
from shared.audit.filters import parse_request
from shared.audit.http import CONTINUATION_HEADER, MAX_PAGE_BYTES, answer_query, read_page
from shared.ports import AuditEntry, AuditLog

handler = audit_query.build().get_user_function()


def _get(**params: str) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url="http://localhost/api/audit", params=params, body=b"")


def test_the_function_is_a_get_route_behind_a_function_key() -> None:
    spec = json.loads(audit_query.build().get_function_json())
    trigger = spec["bindings"][0]
    found = (trigger["type"], trigger["route"], trigger["methods"], trigger["authLevel"])
    assert found == ("httpTrigger", "audit", ["GET"], "FUNCTION")


async def test_json_pages_follow_the_continuation_header(configured: list) -> None:
    seen, token = [], None
    while True:
        params = {"kind": "decision", "limit": "5", **({"continuation": token} if token else {})}
        response = await handler(_get(**params))
        assert response.status_code == 200 and response.mimetype == "application/json"
        body = json.loads(response.get_body())
        assert body["count"] == len(body["records"]) <= 5
        seen.extend(body["records"])
        token = body["continuation"]
        assert response.headers.get(CONTINUATION_HEADER) == token
        if token is None:
            break
    expected = [r for r in configured if r.entry.kind == "decision"]
    assert [item["record_id"] for item in seen] == [r.record_id for r in expected]
    assert seen[0]["data"] == expected[0].entry.data and seen[0]["hash"] == expected[0].hash


async def test_filters_and_csv_format(configured: list) -> None:
    response = await handler(_get(device="desktop-b2", decision="acted", format="csv", code="ignored-function-key"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_body().decode(), newline="")))
    assert rows[0] == list(RECORD_FIELDS)
    expected = [r for r in configured if r.entry.display_name == "desktop-b2" and r.entry.decision == "acted"]
    assert [row[0] for row in rows[1:]] == [r.record_id for r in expected] and len(expected) == 1
    window = await handler(_get(**{"from": "2025-03-02T00:00:00Z", "to": "2025-03-02"}))
    records = json.loads(window.get_body())["records"]
    assert records and all(item["partition"] == "2025-03-02" for item in records)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"from": "last tuesday"}, "from"),
        ({"to": "2020-01-01", "from": "2021-01-01"}, "to"),
        ({"limit": "100000"}, "limit"),
        ({"continuation": "garbage"}, "continuation"),
        ({"format": "xlsx"}, "format"),
        ({"run": "r1"}, "run"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(params: dict[str, str], parameter: str) -> None:
    response = await handler(_get(**params))
    assert response.status_code == 400
    error = json.loads(response.get_body())["error"]
    assert error["parameter"] == parameter and repr(parameter) in error["message"]


async def test_missing_setting_is_500_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_BACKEND", "table")
    response = await handler(_get())
    assert response.status_code == 500
    assert "AUDIT_TABLE_ENDPOINT" in json.loads(response.get_body())["error"]["message"]


async def test_store_down_is_503_with_retry_after(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("JANITOR_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("shared.audit.SQLITE_FILE", "file/audit.sqlite3")
    response = await handler(_get())
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert json.loads(response.get_body())["error"]["code"] == "AuditUnavailable"


async def test_pages_are_cut_by_bytes_and_chain_without_gaps(tmp_path: Path) -> None:
    """1,000 records of about 4 KB: a limit of 1,000 is answered in pages of at most MAX_PAGE_BYTES, and following
    the continuation serves every record once (before issue 12 one answer held them all, 37 MB at 185 KB each)."""
    audit = SqliteAuditLog(tmp_path / "a.sqlite3")
    for i in range(1_000):
        await audit.append(AuditEntry(kind="decision", command_id=f"c{i}", data={"note": "x" * 4_000}))
    seen: list[str] = []
    token = None
    while True:
        params = {"limit": "1000"} | ({"continuation": token} if token else {})
        answer = await answer_query(params, lambda: audit)
        assert answer.status == 200 and len(answer.body) <= MAX_PAGE_BYTES + 4096
        seen += [r["command_id"] for r in json.loads(answer.body)["records"]]
        token = answer.headers.get(CONTINUATION_HEADER)
        if token is None:
            break
    assert seen == [f"c{i}" for i in range(1_000)]
    await audit.close()


async def test_a_small_byte_budget_still_serves_one_record_per_page(tmp_path: Path) -> None:
    audit = SqliteAuditLog(tmp_path / "a.sqlite3")
    for i in range(5):
        await audit.append(AuditEntry(kind="decision", command_id=f"c{i}", data={"note": "x" * 1_000}))
    request = parse_request({"limit": "5"})
    parts, token = await read_page(audit, request, max_bytes=10, chunk=2)
    assert len(parts) == 1 and token is not None
    for chunk in (2, 3):  # the page ends where a chunk begins, or inside one
        parts, after = await read_page(audit, replace(request, continuation=token), max_bytes=3_000, chunk=chunk)
        assert [json.loads(p)["seq"] for p in parts] == [2, 3] and after is not None
        parts, _ = await read_page(audit, replace(request, continuation=after), max_bytes=3_000, chunk=chunk)
        assert [json.loads(p)["seq"] for p in parts] == [4, 5]
    await audit.close()


async def test_the_function_reads_through_one_audit_log_per_process(configured: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: a new Table client and managed-identity credential per request meant a token fetch per call."""
    built: list[AuditLog] = []
    real = bootstrap.audit_log

    def counting(env: Mapping[str, str] | None = None) -> AuditLog:
        built.append(real(env))
        return built[-1]

    monkeypatch.setattr(bootstrap, "audit_log", counting)
    await bootstrap.close_shared()
    for _ in range(3):
        assert (await handler(_get(limit="5"))).status_code == 200
    assert len(built) == 1
