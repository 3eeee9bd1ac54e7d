"""A value read once and reused for a while by every command of a worker process (protected groups, keeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class TimedValue[T]:
    """Loads on first use and again once `ttl` seconds old; one load serves every caller waiting for it."""

    def __init__(self, ttl: float, timer: Callable[[], float]) -> None:
        self._ttl, self._timer = ttl, timer
        self._held: tuple[float, T] | None = None
        self._refresh = asyncio.Lock()

    def _fresh(self, now: float) -> bool:
        return self._held is not None and now - self._held[0] <= self._ttl

    async def get(self, load: Callable[[], Awaitable[T]]) -> T:
        if self._held is not None and self._fresh(self._timer()):
            return self._held[1]
        async with self._refresh:  # no stampede: the first caller loads, the others wait and reuse it
            stamp = self._timer()
            if self._held is None or not self._fresh(stamp):
                self._held = (stamp, await load())
            return self._held[1]
