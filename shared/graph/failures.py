"""Turn a failed Graph response into a typed error a person can act on (pure: no I/O).

The one place a Graph status is classified (`error_class`): whole responses, the inner responses of a
$batch and the write results the worker interprets all read the same way, so the worker decides retry or
not from the error's class alone.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from shared.errors import (
    GraphBadRequest,
    GraphError,
    GraphNotFound,
    GraphPermissionDenied,
    GraphThrottled,
    GraphUnavailable,
)
from shared.graph.permissions import missing_permission_hint
from shared.graph.wire import ErrorDetail
from shared.ports import GraphResult

#: Statuses worth another attempt (after Retry-After when Graph sends one).
RETRYABLE_STATUSES = frozenset({429, 503, 504})


class TransientResponse(Exception):
    """One attempt failed in a way worth retrying; the retry loop decides whether another attempt fits."""

    def __init__(self, error: GraphError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup (inner $batch headers are a plain dict)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def request_id_of(headers: Mapping[str, str] | None, detail: ErrorDetail | None = None) -> str | None:
    """Graph's request-id: from the headers, else from the error body's innerError."""
    found = header(headers, "request-id")
    if found is None and detail is not None and detail.inner_error is not None:
        found = detail.inner_error.request_id
    return found


#: Graph's answer when an app identity PATCHes anything but extensionAttributes on a device whose
#: operatingSystem is not Windows (microsoft-graph-docs issues 15707 and 16641): 400 Request_BadRequest,
#: "Properties other than ExtendedAttribute1..15 can be modified only on windows devices."
NON_WINDOWS_CODE = "Request_BadRequest"
NON_WINDOWS_MARKER = "can be modified only on windows devices"


def is_non_windows_refusal(status: int, code: str | None, message: str | None) -> bool:
    """Graph refused a write because the device is not Windows: permanent, and no permission changes it."""
    return status == 400 and code == NON_WINDOWS_CODE and NON_WINDOWS_MARKER in (message or "").lower()


def failure_message(status: int, detail: ErrorDetail, method: str, path: str, *, retry_after: float | None = None) -> str:
    """What went wrong and what to do, in one sentence. `path` is relative to the API version, without the query."""
    what = f"{method.upper()} {path}"
    said = f" Graph said: {detail.message}" if detail.message else ""
    if is_non_windows_refusal(status, detail.code, detail.message):
        return (
            f"Graph refused {what}: the device's operating system is not Windows, and on such devices an application "
            "may change only extensionAttribute1..15 (Graph's rule, the same with every permission and role). It can be "
            f"tagged or deleted, not disabled; nothing was changed.{said}"
        )
    if status == 403:
        return f"Graph refused {what}: {missing_permission_hint(method, path)}.{said}"
    if status == 404:
        return f"{what}: the object does not exist (deleted, or a wrong id).{said}"
    if status == 401:
        return (
            f"Graph did not accept the token for {what}: check GRAPH_AUTH and AZURE_CLIENT_ID, and that the identity "
            f"belongs to this tenant.{said}"
        )
    if status in RETRYABLE_STATUSES:
        wait = f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""
        reason = "throttled" if status == 429 else "was temporarily unavailable for"
        return f"Graph {reason} {what}{wait}.{said}"
    if status >= 500:
        return f"Graph failed {what} with a server error; it is worth retrying later.{said}"
    return f"Graph rejected {what} as invalid.{said}"


def error_class(status: int) -> type[GraphError]:
    """The class of a failed answer: 429 throttled, 5xx/408 or no answer (0) unavailable (both transient);
    401/403 permission denied, 404 not found, any other 4xx a bad request (all permanent)."""
    if status == 429:
        return GraphThrottled
    if status == 0 or status == 408 or status >= 500:
        return GraphUnavailable
    if status in (401, 403):
        return GraphPermissionDenied
    if status == 404:
        return GraphNotFound
    return GraphBadRequest


def graph_error(
    status: int, detail: ErrorDetail, request_id: str | None, method: str, path: str, *, retry_after: float | None = None
) -> GraphError:
    """The typed error for a failed request (403 names the permission to grant)."""
    message = failure_message(status, detail, method, path, retry_after=retry_after)
    return error_class(status)(message, status=status, code=detail.code, request_id=request_id)


def result_error(result: GraphResult) -> GraphError | None:
    """The typed error a write's result stands for (the gateway reports $batch writes as results); None: it worked."""
    if 0 < result.status < 400:
        return None
    message = result.error_message or result.error_code or f"Graph answered {result.status}"
    return error_class(result.status)(message, status=result.status, code=result.error_code, request_id=result.request_id)
