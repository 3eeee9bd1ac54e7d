"""Requests and responses as the simulator's handlers see them, and Graph's error body.

The same shapes serve top-level HTTP requests and the inner requests of a `$batch`, so both go through
one pipeline (auth, faults, throttling, handler).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from simulator.auth import Caller

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
_encode = msgspec.json.encode


@dataclass(slots=True)
class GraphRequest:
    method: str
    path: str  # after the version (/v1.0 or /beta), decoded, e.g. "/devices/abc"
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes | None
    caller: Caller
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_request_id: str | None = None
    inner: bool = False  # part of a $batch
    version: str = "v1.0"  # the API version in the URL: v1.0 or beta

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON; a GraphHTTPError (400) when it is missing or malformed."""
        if not self.body:
            raise GraphHTTPError(400, "BadRequest", "The request body is empty; send a JSON object.")
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError as exc:
            raise GraphHTTPError(400, "BadRequest", f"Unable to read JSON request payload: {exc}") from None


@dataclass(slots=True)
class GraphResponse:
    status: int
    body: bytes | None = None  # JSON
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE


class GraphHTTPError(Exception):
    """Raised by handlers and parsers; becomes a Graph-shaped error response."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str, request_id: str, client_request_id: str | None) -> bytes:
    """Graph's error shape: {"error": {"code", "message", "innerError": {"date", "request-id", ...}}}."""
    return _encode(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": request_id,
                    "client-request-id": client_request_id or request_id,
                },
            }
        }
    )


def json_response(obj: Any, status: int = 200) -> GraphResponse:
    return GraphResponse(status=status, body=_encode(obj))


def not_found(key: str) -> GraphHTTPError:
    return GraphHTTPError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Path after /v1.0 (decoded) and query parameters of a relative or absolute Graph URL."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme or path.startswith("/v1.0/") or path == "/v1.0":
        if not path.startswith("/v1.0"):
            raise GraphHTTPError(400, "BadRequest", f"This simulator serves Graph v1.0 only; got {path!r}.")
        path = path[len("/v1.0") :]
    if not path.startswith("/"):
        path = "/" + path
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))
