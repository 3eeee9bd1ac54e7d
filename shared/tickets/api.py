"""The ticket webhook's HTTP behaviour, without the Functions runtime (functions/tickets.py only adapts).

POST: 413 over 256 KB, 401 (no detail) for a missing/wrong/expired signature, 400 with every problem for
bad input, 202 {"request_id", "status_url"} when accepted (the same answer for a resubmission), 503 when a
store or Graph is unavailable. Nothing is queued for a rejected request. GET: 200 status document or 404.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from shared.errors import AuditUnavailable, ConfigError, PermanentError, TransientError
from shared.ports import AuditLog
from shared.tickets.intake import TicketIntake, decode_body, status_path
from shared.tickets.payloads import MAX_BODY_BYTES, SOURCES, PayloadError, PayloadTooLarge
from shared.tickets.signature import HEADER, SignatureError, verify
from shared.tickets.status import is_request_id, ticket_status

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "30"


def _unavailable(exc: Exception) -> ApiResponse:
    """503 that says only "retry later": the cause (store paths, Graph's URL) goes to the log, not the caller."""
    log.warning("ticket webhook: temporarily unavailable: %s", exc)
    return ApiResponse(503, {"error": "temporarily unavailable, retry later"}, {"Retry-After": RETRY_AFTER_SECONDS})


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict[str, str])


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _status_url(base_url: str | None, rid: str) -> str:
    return urljoin(base_url, status_path(rid)) if base_url else status_path(rid)


async def post_ticket(
    body: bytes,
    headers: Mapping[str, str],
    params: Mapping[str, str],
    *,
    intake: Callable[[], TicketIntake],
    secret: Callable[[], bytes],
    base_url: str | None = None,
    now: Callable[[], float] = time.time,
) -> ApiResponse:
    """Handle POST /api/tickets. `intake` and `secret` are called only once the request got that far."""
    if len(body) > MAX_BODY_BYTES:
        return ApiResponse(413, {"error": f"request body is larger than {MAX_BODY_BYTES // 1024} KB"})
    try:
        verify(secret(), _header(headers, HEADER), body, now=now())
    except SignatureError as exc:
        log.warning("ticket webhook: signature refused: %s", exc)
        return ApiResponse(401, {"error": "unauthorized"})
    except ConfigError as exc:
        log.error("ticket webhook is not configured: %s", exc)
        return ApiResponse(500, {"error": "the ticket webhook is not configured on the server"})
    source = params.get("source") or _header(headers, "X-Janitor-Source")
    if source is not None and source.strip().lower() not in SOURCES:
        return ApiResponse(400, {"error": f"source: must be one of {', '.join(SOURCES)}", "problems": [f"source: {source!r}"]})
    try:
        decode_body(body)  # cheap checks before any store is touched
        result = await intake().submit(body, source=source.strip().lower() if source else None)
    except PayloadTooLarge as exc:
        return ApiResponse(413, {"error": str(exc)})
    except PayloadError as exc:
        return ApiResponse(
            400, {"error": "the ticket payload is not valid: " + "; ".join(exc.problems), "problems": exc.problems}
        )
    except (AuditUnavailable, TransientError) as exc:
        return _unavailable(exc)
    except (ConfigError, PermanentError) as exc:  # a bad setting or policy file: the server's problem, not the caller's
        log.error("ticket webhook cannot accept requests: %s", exc)
        return ApiResponse(500, {"error": "the ticket webhook is not configured correctly on the server"})
    return ApiResponse(202, {"request_id": result.request_id, "status_url": _status_url(base_url, result.request_id)})


async def get_ticket(request_id: str, *, audit: Callable[[], AuditLog]) -> ApiResponse:
    """Handle GET /api/tickets/{id}."""
    if not is_request_id(request_id):
        return ApiResponse(404, {"error": "no such ticket request (ids are 32 lowercase hex characters)"})
    try:
        doc = await ticket_status(audit(), request_id)
    except (AuditUnavailable, TransientError) as exc:
        return _unavailable(exc)
    if doc is None:
        return ApiResponse(404, {"error": f"no ticket request {request_id}"})
    return ApiResponse(200, doc)
