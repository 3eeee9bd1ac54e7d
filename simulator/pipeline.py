"""One request through the simulator: route, permission, injected faults, throttling, handler, headers.

Top-level HTTP requests and the inner requests of a `$batch` take exactly this path, so an inner request
is authorised, throttled and faulted on its own, as Graph does.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.faults import Faults
from simulator.limits import Limits, Throttle
from simulator.tenant import Tenant
from simulator.wire import GraphHTTPError, GraphRequest, GraphResponse, error_body

type Handler = Callable[..., GraphResponse]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str  # e.g. "/devices/{id}"
    pattern: re.Pattern[str]
    handler: Handler
    permission: str
    units: int = 1
    writes: int = 0
    version: str = "v1.0"  # the API version it is served under: v1.0 or beta


_ROUTES: list[Route] = []
#: The API versions the simulator serves (a path starts with one of them).
VERSIONS: tuple[str, ...] = ("v1.0", "beta")


def route(
    method: str, template: str, permission: str, *, units: int = 1, writes: int = 0, version: str = "v1.0"
) -> Callable[[Handler], Handler]:
    """Register a handler for `METHOD template` ({name} matches one path segment; ({name}) a quoted key).

    `version` is the API version it is served under; the same path under the other version is not found.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)}, not {version!r}")
    regex = re.escape(template)
    regex = regex.replace(r"\(deviceId='\{device_id\}'\)", r"\(deviceId='(?P<device_id>[^'/]*)'\)")
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/()]+)", regex)

    def register(handler: Handler) -> Handler:
        pattern = re.compile(f"^{regex}$", re.IGNORECASE)
        _ROUTES.append(Route(method, template, pattern, handler, permission, units, writes, version))
        return handler

    return register


@dataclass
class Stats:
    """What the simulator served. `by_path` counts "METHOD /template" (e.g. "PATCH /devices/{id}")."""

    requests: int = 0  # HTTP requests
    operations: int = 0  # HTTP requests + inner $batch requests
    throttled: int = 0  # 429s sent (inner ones included)
    faults_5xx: int = 0
    writes: int = 0  # successful PATCH/DELETE of devices
    batches: int = 0
    devices_served: int = 0  # device objects in list pages
    in_flight: int = 0  # HTTP requests received and not yet answered (latency included)
    peak_in_flight: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "operations": self.operations,
            "throttled": self.throttled,
            "faults_5xx": self.faults_5xx,
            "writes": self.writes,
            "batches": self.batches,
            "devices_served": self.devices_served,
            "peak_in_flight": self.peak_in_flight,
            "by_path": dict(self.by_path),
            "by_status": dict(self.by_status),
        }


class Pipeline:
    """Serves GraphRequests for one tenant. Used from a single event loop (thread)."""

    def __init__(self, tenant: Tenant, base_url: str, limits: Limits, faults: Faults) -> None:
        from simulator import api  # noqa: F401  (registers the routes)

        self.tenant = tenant
        self.base_url = base_url
        self.limits = limits
        self.faults = faults
        self.throttle = Throttle(limits, len(tenant.users))
        self.stats = Stats()
        self.cache: dict[Any, Any] = {}  # per-query counts and sort orders, keyed with the store version
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # how injected latency waits (tests replace it)

    def version_url(self, version: str) -> str:
        """The root of an API version (base_url is the v1.0 root): for @odata.context and nextLinks."""
        return self.base_url if version == "v1.0" else f"{self.base_url.removesuffix('/v1.0')}/{version}"

    def match(self, method: str, path: str, version: str = "v1.0") -> tuple[Route, dict[str, str]]:
        allowed = False
        for r in _ROUTES:
            if r.version != version:
                continue
            found = r.pattern.match(path)
            if found:
                if r.method == method:
                    return r, found.groupdict()
                allowed = True
        if allowed:
            raise GraphHTTPError(405, "Request_BadRequest", f"The method {method} is not allowed on {path}.")
        if version != "v1.0":
            served = sorted({r.template for r in _ROUTES if r.version == version})
            raise GraphHTTPError(
                404, "BadRequest", f"This simulator serves Graph v1.0, and on {version} only {', '.join(served)}; got {path!r}."
            )
        segment = next((s for s in path.split("/") if s), path)
        raise GraphHTTPError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def handle(self, req: GraphRequest) -> GraphResponse:
        """Serve one request (never raises: errors become Graph-shaped responses)."""
        self.stats.operations += 1
        template = req.path
        try:
            r, params = self.match(req.method, req.path, req.version)
            template = r.template
            operation = f"{req.method} {req.path}"
            refused = req.caller.refusal(r.permission)
            if refused:
                raise GraphHTTPError(403, "Authorization_RequestDenied", refused)
            fault = self.faults.decide(operation)
            if fault == "429":
                retry = self.faults.storm_retry_after
                raise GraphHTTPError(
                    429,
                    "TooManyRequests",
                    "Too many requests (injected 429 storm). Retry after the delay.",
                    {"Retry-After": str(retry)},
                )
            if fault == "5xx":
                self.stats.faults_5xx += 1
                status = self.faults.error_status
                headers = {"Retry-After": str(self.faults.error_retry_after)} if self.faults.error_retry_after else {}
                raise GraphHTTPError(
                    status,
                    "serviceNotAvailable" if status == 503 else "UnknownError",
                    "The service is temporarily unavailable (injected fault).",
                    headers,
                )
            verdict = self.throttle.check(req.caller.app, r.units, r.writes, self.clock())
            if not verdict.allowed:
                raise GraphHTTPError(
                    429,
                    "TooManyRequests",
                    f"Application {req.caller.app} exceeded its {verdict.budget} limit. Retry after {verdict.retry_after} s.",
                    {"Retry-After": str(verdict.retry_after)},
                )
            response = r.handler(self, req, **params)
            if r.units:
                response.headers["x-ms-resource-unit"] = str(r.units)
            if verdict.used_percent >= 80:
                response.headers["x-ms-throttle-limit-percentage"] = f"{verdict.used_percent / 100:.1f}"
        except GraphHTTPError as exc:
            if exc.status == 429:
                self.stats.throttled += 1
            response = GraphResponse(
                exc.status, error_body(exc.code, exc.message, req.request_id, req.client_request_id), exc.headers
            )
        response.headers["request-id"] = req.request_id
        response.headers["client-request-id"] = req.client_request_id or req.request_id
        version = "" if req.version == "v1.0" else f"/{req.version}"
        self.stats.by_path[f"{req.method} {version}{template}"] += 1
        self.stats.by_status[response.status] += 1
        return response
