"""Graph's identity throttling, as pure bookkeeping: callers pass the time in.

Two budgets per app (and tenant): resource units in a token bucket that refills over 10 seconds (GET 1,
writes 1, checkMemberGroups 4) and writes in a sliding window (3,000 per 150 s by default). A request that
does not fit gets a 429 with Retry-After: the whole seconds until it would fit.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Limits:
    """Throttling knobs. `resource_units_per_10s="auto"` picks Graph's figure for the tenant's user count
    (3,500 under 50 users, 5,000 up to 500, 8,000 above); None turns that budget off, as does
    `write_budget=None`. `Limits.off()` turns throttling off altogether."""

    resource_units_per_10s: int | Literal["auto"] | None = "auto"
    write_budget: int | None = 3000
    write_window_s: float = 150.0

    @classmethod
    def off(cls) -> Limits:
        return cls(resource_units_per_10s=None, write_budget=None)

    def units_for(self, user_count: int) -> int | None:
        if self.resource_units_per_10s != "auto":
            return self.resource_units_per_10s
        return 3500 if user_count < 50 else 5000 if user_count <= 500 else 8000


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may proceed; when not, how long to wait and which budget ran out."""

    allowed: bool
    retry_after: int = 0
    budget: str = ""
    used_percent: float = 0.0  # of the resource-unit bucket, after this request


class _Bucket:
    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / 10.0
        self.tokens = float(capacity)
        self.at = now

    def refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now


class Throttle:
    """Per-app budgets. Not thread-safe: the simulator calls it from its event loop only."""

    def __init__(self, limits: Limits, user_count: int) -> None:
        self.limits = limits
        self.units = limits.units_for(user_count)
        self._buckets: dict[str, _Bucket] = {}
        self._writes: dict[str, deque[float]] = {}

    def check(self, app: str, units: int, writes: int, now: float) -> Verdict:
        """Charge a request, or say when to come back. Nothing is charged when it is refused."""
        bucket = None
        if self.units:
            bucket = self._buckets.get(app)
            if bucket is None:
                bucket = self._buckets[app] = _Bucket(self.units, now)
            bucket.refill(now)
            if bucket.tokens < units:
                wait = (units - bucket.tokens) / bucket.rate
                return Verdict(False, max(1, math.ceil(wait)), "resource units", 100.0)
        budget = self.limits.write_budget
        if writes and budget:
            window = self.limits.write_window_s
            log = self._writes.setdefault(app, deque())
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) + writes > budget:
                wait = log[len(log) + writes - budget - 1] + window - now if log else window
                return Verdict(False, max(1, math.ceil(wait)), "write budget", _used(bucket))
            log.extend([now] * writes)
        if bucket is not None:
            bucket.tokens -= units
        return Verdict(True, used_percent=_used(bucket))


def _used(bucket: _Bucket | None) -> float:
    return 0.0 if bucket is None else 100.0 * (1 - bucket.tokens / bucket.capacity)
