"""The audit query API's behaviour, free of azure.functions: parameters in, status/body/headers out.

`functions/audit_api.py` only converts the request and the answer. Bad parameters are a 400 naming the
parameter (checked before the store is opened); a missing setting a 500 naming it; a store that is down a
503 with Retry-After.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.audit.codec import record_to_dict
from shared.audit.export import to_csv
from shared.audit.filters import FilterError, parse_request
from shared.errors import AuditUnavailable, ConfigError
from shared.ports import AuditLog

log = logging.getLogger(__name__)

CONTINUATION_HEADER = "X-Continuation-Token"


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes
    mimetype: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, payload: Mapping[str, Any], headers: dict[str, str] | None = None) -> HttpAnswer:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return HttpAnswer(status, body, "application/json", headers or {})


def _error(status: int, code: str, message: str, **extra: str) -> HttpAnswer:
    headers = {"Retry-After": "30"} if status == 503 else {}
    return _json(status, {"error": {"code": code, "message": message, **extra}}, headers)


async def answer_query(params: Mapping[str, str], open_log: Callable[[], AuditLog], *, now: datetime | None = None) -> HttpAnswer:
    """Answer GET /api/audit: one page of records as JSON or CSV, the next page's token in a header."""
    try:
        request = parse_request(params, now=now)
    except FilterError as exc:
        return _error(400, "BadParameter", str(exc), parameter=exc.parameter)
    try:
        audit = open_log()
    except ConfigError as exc:
        log.error("audit API: %s", exc)
        return _error(500, "ConfigError", f"the audit log is not configured: setting {exc}")
    try:
        page = await audit.query(request.query, limit=request.limit, continuation=request.continuation)
    except AuditUnavailable as exc:
        log.warning("audit API: %s", exc)
        return _error(503, "AuditUnavailable", "the audit store cannot be read right now; retry later")
    finally:
        await audit.close()
    headers = {CONTINUATION_HEADER: page.continuation} if page.continuation else {}
    if request.format == "csv":
        headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return HttpAnswer(200, to_csv(page.records).encode(), "text/csv", headers)
    records = [record_to_dict(r) for r in page.records]
    payload = {"records": records, "count": len(records), "continuation": page.continuation}
    return _json(200, payload, headers)
