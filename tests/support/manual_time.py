"""Time the test moves by hand: an injected sleep released on demand, and a way to let ready tasks run."""

from __future__ import annotations

import asyncio


class ManualSleep:
    """An injected sleep: each call waits until the test calls `elapse()`; the delays asked for are kept."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._waiting: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        await future

    def elapse(self) -> None:
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(None)


async def settle() -> None:
    """Let every ready task run (a handful of event-loop turns; no wall-clock time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)
