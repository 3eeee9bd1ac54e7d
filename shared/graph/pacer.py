"""Client-side pacing of Graph writes, so a big remediation run stays inside the write budget.

Graph allows about 3,000 writes per 150 s per app and tenant and answers 429 beyond that. A token bucket
sends writes smoothly at the budget's rate (with a small burst) instead of bursting into 429s: in any
window of `window_seconds` it releases at most `budget` writes, and in a long run close to that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from shared import settings

#: Fraction of the budget the steady rate aims at: leaves room for clock skew and network jitter.
HEADROOM = 0.99
#: Largest burst: one full $batch of 20 writes.
MAX_BURST = 20
#: Token fractions below this count as whole (floating-point rounding must not stall a waiter).
_EPSILON = 1e-6


class WritePacer:
    """A FIFO token bucket: `acquire(n)` waits until n writes may go out."""

    def __init__(
        self,
        budget: int,
        window_seconds: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if budget < 1 or window_seconds <= 0:
            raise ValueError(f"write budget must be >= 1 per window > 0 s, not {budget} per {window_seconds} s")
        self.budget = budget
        self.window_seconds = window_seconds
        self.burst = burst if burst is not None else max(1, min(MAX_BURST, budget // 10))
        if not 1 <= self.burst <= budget:
            raise ValueError(f"burst must be between 1 and the budget ({budget}), not {self.burst}")
        # burst + rate * window <= budget * HEADROOM (when the budget leaves room for a burst at all)
        self.rate = max(budget * HEADROOM - self.burst, budget * 0.5) / window_seconds
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._lock: asyncio.Lock | None = None
        self.released = 0  # writes released so far (for metrics and tests)

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None) -> WritePacer:
        return cls(
            int(settings.number("GRAPH_WRITE_BUDGET", env, minimum=1, integer=True)),
            settings.number("GRAPH_WRITE_WINDOW_SECONDS", env, minimum=1),
        )

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, count: int = 1) -> None:
        """Wait (first come, first served) until `count` writes may be sent; `count` <= burst."""
        if not 1 <= count <= self.burst:
            raise ValueError(f"can acquire 1..{self.burst} writes at a time, not {count}")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._refill()
            while self._tokens < count - _EPSILON:
                await self._sleep((count - self._tokens) / self.rate)
                self._refill()
            self._tokens = max(0.0, self._tokens - count)
            self.released += count
