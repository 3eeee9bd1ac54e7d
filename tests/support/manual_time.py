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


class VirtualClock:
    """Time that moves only when the test advances it or the code under test sleeps on it.

    Pass it as a clock and `sleep` as the injected sleep: waits take no wall-clock time, and `slept` keeps
    every delay asked for, so a test asserts what was waited rather than racing the machine.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is
