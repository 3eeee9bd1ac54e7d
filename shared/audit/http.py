"""The audit query and report APIs' behaviour, free of azure.functions: parameters in, status/body/headers out.

`functions/audit_api.py` and `functions/report_api.py` only convert the request and the answer. Bad
parameters are a 400 naming the parameter (checked before the store is opened); a missing setting a 500
naming it; a store that is down a 503 with Retry-After. A page holds at most `limit` records and at most
MAX_PAGE_BYTES of them: records are read from the store a chunk at a time and encoded as they come, and the
page ends (with a continuation token) at whichever bound comes first, so neither the answer nor the memory
behind it grows with `limit`. The report reads at most MAX_REPORT_RECORDS records and says when it stopped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.audit.codec import encode_continuation
from shared.audit.export import csv_header, csv_line, json_line
from shared.audit.filters import AuditRequest, FilterError, parse_request
from shared.audit.review import build_report
from shared.errors import AuditUnavailable, ConfigError
from shared.ports import AuditLog, AuditRecord

log = logging.getLogger(__name__)

CONTINUATION_HEADER = "X-Continuation-Token"
#: Largest total size of the records of one page (a record alone may exceed it: a page holds at least one).
MAX_PAGE_BYTES = 4 * 1024 * 1024
#: Records read from the store at a time while a page is filled.
READ_CHUNK = 100


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes
    mimetype: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict[str, str])


def _json(status: int, payload: Mapping[str, Any], headers: dict[str, str] | None = None) -> HttpAnswer:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return HttpAnswer(status, body, "application/json", headers or {})


def _error(status: int, code: str, message: str, **extra: str) -> HttpAnswer:
    headers = {"Retry-After": "30"} if status == 503 else {}
    return _json(status, {"error": {"code": code, "message": message, **extra}}, headers)


async def answer_query(params: Mapping[str, str], open_log: Callable[[], AuditLog], *, now: datetime | None = None) -> HttpAnswer:
    """Answer GET /api/audit: one page of records as JSON or CSV, the next page's token in a header.

    `open_log` returns the audit log to read; its owner closes it (the Function passes the process's one).
    """
    try:
        request = parse_request(params, now=now)
    except FilterError as exc:
        return _error(400, "BadParameter", str(exc), parameter=exc.parameter)

    async def page(audit: AuditLog) -> HttpAnswer:
        parts, continuation = await read_page(audit, request)
        headers = {CONTINUATION_HEADER: continuation} if continuation else {}
        if request.format != "json":
            headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
            return HttpAnswer(200, (csv_header(request.format) + "".join(parts)).encode(), "text/csv", headers)
        tail = json.dumps({"count": len(parts), "continuation": continuation}, separators=(",", ":"))[1:]
        return HttpAnswer(200, ('{"records":[' + ",".join(parts) + "]," + tail).encode(), "application/json", headers)

    return await _reading("audit API", open_log, page)


async def _reading(api: str, open_log: Callable[[], AuditLog], read: Callable[[AuditLog], Awaitable[HttpAnswer]]) -> HttpAnswer:
    """Open the log and read it: a bad setting is a 500, a store that cannot be read a 503 (details logged only)."""
    try:
        audit = open_log()
    except ConfigError as exc:
        log.error("%s: %s", api, exc)
        return _error(500, "ConfigError", f"the audit log is not configured: setting {exc}")
    try:
        return await read(audit)
    except AuditUnavailable as exc:
        log.warning("%s: %s", api, exc)
        return _error(503, "AuditUnavailable", "the audit store cannot be read right now; retry later")


#: The most records one report answer reads (the API's bound; the CLI report reads the whole selection).
MAX_REPORT_RECORDS = 50_000
REPORT_FORMATS = ("html",)
#: The report is inert: no script, nothing fetched; the browser is told the same.
REPORT_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


async def answer_report(
    params: Mapping[str, str], open_log: Callable[[], AuditLog], *, now: datetime | None = None
) -> HttpAnswer:
    """Answer GET /api/report: the self-contained HTML report of what the /api/audit filters select.

    `limit` bounds the records read (default and most MAX_REPORT_RECORDS); the report says when it stopped.
    It is one document, not pages: a `continuation` is refused.
    """
    try:
        request = parse_request(
            params, now=now, default_limit=MAX_REPORT_RECORDS, max_limit=MAX_REPORT_RECORDS, formats=REPORT_FORMATS
        )
        if request.continuation is not None:
            raise FilterError("continuation", "does not apply to a report (one document); narrow from/to instead")
    except FilterError as exc:
        return _error(400, "BadParameter", str(exc), parameter=exc.parameter)

    async def report(audit: AuditLog) -> HttpAnswer:
        html = await build_report(audit, request, now=now, limit=request.limit)
        return HttpAnswer(200, html.encode(), "text/html", dict(REPORT_HEADERS))

    return await _reading("report API", open_log, report)


def _encoded(record: AuditRecord, fmt: str) -> str:
    return json_line(record) if fmt == "json" else csv_line(record, fmt)


async def read_page(
    audit: AuditLog, request: AuditRequest, *, max_bytes: int = MAX_PAGE_BYTES, chunk: int = READ_CHUNK
) -> tuple[list[str], str | None]:
    """The page's records, encoded in the request's format, and the token of the next page (None at the end)."""
    parts: list[str] = []
    size = 0
    token = request.continuation
    while len(parts) < request.limit:
        page = await audit.query(request.query, limit=min(chunk, request.limit - len(parts)), continuation=token)
        previous = None
        for record in page.records:
            part = _encoded(record, request.format)
            size += len(part.encode())
            if parts and size > max_bytes:  # the page ends after the record before this one
                return parts, encode_continuation(previous.partition, previous.seq) if previous else token
            parts.append(part)
            previous = record
        token = page.continuation
        if token is None:
            return parts, None
    return parts, token
