"""Adaptive concurrency for bulk Graph reads: how many requests may be out at once, learned from Graph's answers.

Graph's identity budget is shared by everything the app does, so a parallel reader must slow down as soon as
Graph says so: the limit halves on a 429 and steps down by one when Graph reports more than 80 % of the
budget used (`x-ms-throttle-limit-percentage`), then climbs back one step per round of calm answers (AIMD,
as TCP does). Answers to requests that were already out when the limit dropped do not drop it again, so a
burst of 429s costs one halving, not one per request. Retrying stays with tenacity (`shared.graph.retry`):
the gate only decides when an attempt may go out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager

from shared.graph.failures import header

THROTTLE_HEADER = "x-ms-throttle-limit-percentage"
#: Graph sends the header from 0.8 (80 % of the budget used) upwards.
PRESSURE_FROM = 0.8


def throttle_percent(headers: Mapping[str, str] | None) -> float | None:
    """The budget share Graph reports as used (0.8 = 80 %), or None when it does not say."""
    value = header(headers, THROTTLE_HEADER)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class AdaptiveLimit:
    """At most `limit` requests at once (between `minimum` and `maximum`), adjusted by `observe()`.

    Implements `shared.ports.RequestGate`. Single event loop; no clock: every change follows an answer.
    """

    def __init__(self, maximum: int, *, minimum: int = 1) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, not {minimum} and {maximum}")
        self.maximum, self.minimum = maximum, minimum
        self.limit = self.lowest = maximum
        self.in_flight = 0
        self.throttled = 0  # 429s heard
        self.warnings = 0  # answers that carried the throttle header
        self._calm = 0  # calm answers since the last change
        self._hold = 0  # answers still due from requests sent before the last decrease
        self._changed = asyncio.Event()

    @asynccontextmanager
    async def slot(self) -> AsyncGenerator[None]:
        """Hold one of the `limit` places while a request is out."""
        while self.in_flight >= self.limit:
            self._changed.clear()
            await self._changed.wait()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._changed.set()

    def observe(self, status: int, throttle_percent: float | None) -> None:
        """Hear one answer (after its slot was released): 429 halves, the header steps down, calm climbs."""
        held = self._hold > 0
        self._hold = max(0, self._hold - 1)
        if status == 429:
            self.throttled += 1
            self._decrease(self.limit // 2, held)
        elif throttle_percent is not None and throttle_percent >= PRESSURE_FROM:
            self.warnings += 1
            self._decrease(self.limit - 1, held)
        elif 0 < status < 400:
            self._calm += 1
            if self._calm >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._calm = 0
                self._changed.set()

    def _decrease(self, target: int, held: bool) -> None:
        self._calm = 0
        if held:  # an echo of the burst that already lowered the limit
            return
        self.limit = max(self.minimum, target)
        self.lowest = min(self.lowest, self.limit)
        self._hold = self.in_flight
