"""GET /api/report: the HTML review report behind a function key, with the /api/audit filters, on both backends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import azure.functions as func
import pytest

from functions.report_api import audit_report
from shared.audit import SqliteAuditLog
from shared.audit.http import MAX_REPORT_RECORDS, answer_report
from shared.errors import AuditUnavailable
from shared.ports import AuditEntry, AuditPage, AuditQuery

handler = audit_report.build().get_user_function()


def _get(**params: str) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url="http://localhost/api/report", params=params, body=b"")


def _tile(html: str, label: str) -> str:
    found = re.search(rf'<div class="tile[^"]*"><b>([^<]*)</b><span>{re.escape(label)}</span>', html)
    assert found, label
    return found.group(1)


def test_the_function_is_a_get_route_behind_a_function_key() -> None:
    spec = json.loads(audit_report.build().get_function_json())
    trigger = spec["bindings"][0]
    assert (trigger["type"], trigger["route"], trigger["methods"], trigger["authLevel"]) == (
        "httpTrigger", "report", ["GET"], "FUNCTION")  # fmt: skip


async def test_the_report_is_inert_html_of_the_selection(configured: list) -> None:
    response = await handler(_get(code="ignored-function-key"))
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["Cache-Control"] == "no-store"
    html = response.get_body().decode()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
    assert _tile(html, "records") == f"{len(configured):,}"
    assert "run-0301" in html and "run-0302" in html and "Hash chain intact." in html
    assert "Partial report" not in html
    one_run = (await handler(_get(run_id="run-0302"))).get_body().decode()
    assert "run-0302" in one_run and "run-0301" not in one_run
    assert _tile(one_run, "records") == f"{sum(1 for r in configured if r.entry.run_id == 'run-0302'):,}"


async def test_limit_bounds_the_records_read_and_the_report_says_so(configured: list) -> None:
    html = (await handler(_get(limit="5"))).get_body().decode()
    assert _tile(html, "records") == "5"
    assert "Partial report." in html and "first 5 matching records" in html
    exact = (await handler(_get(limit=str(len(configured))))).get_body().decode()
    assert "Partial report" not in exact and _tile(exact, "records") == f"{len(configured):,}"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"from": "last tuesday"}, "from"),
        ({"limit": str(MAX_REPORT_RECORDS + 1)}, "limit"),
        ({"format": "csv"}, "format"),
        ({"continuation": "MjAyNS0wMy0wMTowMDAwMDAwMDAx"}, "continuation"),
        ({"run": "r1"}, "run"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(params: dict[str, str], parameter: str) -> None:
    response = await handler(_get(**params))
    assert response.status_code == 400 and response.mimetype == "application/json"
    error = json.loads(response.get_body())["error"]
    assert error["parameter"] == parameter and repr(parameter) in error["message"]


class DownLog:
    """An audit log whose store cannot be read."""

    async def query(self, query: AuditQuery, *, limit: int = 500, continuation: str | None = None) -> AuditPage:
        raise AuditUnavailable("table service unreachable")


async def test_a_store_that_is_down_is_503() -> None:
    answer = await answer_report({}, lambda: DownLog())  # type: ignore[arg-type,return-value]
    assert answer.status == 503 and answer.headers["Retry-After"] == "30"


async def test_missing_setting_is_500_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_BACKEND", "table")
    response = await handler(_get())
    assert response.status_code == 500
    assert "AUDIT_TABLE_ENDPOINT" in json.loads(response.get_body())["error"]["message"]


async def test_an_empty_selection_is_a_report_too(tmp_path: Path) -> None:
    audit = SqliteAuditLog(tmp_path / "a.sqlite3")
    await audit.append(AuditEntry(kind="run", run_id="r-1", data={"devices_scanned": 3}))
    answer = await answer_report({"run_id": "nothing-like-it"}, lambda: audit)
    await audit.close()
    html = answer.body.decode()
    assert answer.status == 200 and _tile(html, "records") == "0" and "No runs in this selection." in html
