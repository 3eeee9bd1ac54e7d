"""Time the test moves by hand: an injected sleep released on demand, and a way to let ready tasks run."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import pytest


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
    every delay asked for, so a test asserts what was waited rather than racing the machine. Concurrent
    sleepers wake in the order of their deadlines: whenever the ready tasks have run, time jumps to the
    earliest deadline and wakes that sleeper. A task waiting on a socket meanwhile just took longer; after
    `hold_during_threads`, work handed to `asyncio.to_thread` (the SQLite stores) takes no virtual time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self._due: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._threads = 0
        self._no_threads = asyncio.Event()
        self._no_threads.set()

    def hold_during_threads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Time stands still while an `asyncio.to_thread` call runs (as if the store answered at once)."""
        real = asyncio.to_thread

        async def to_thread[T](func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
            self._threads += 1
            self._no_threads.clear()
            try:
                return await real(func, *args, **kwargs)
            finally:
                self._threads -= 1
                if not self._threads:
                    self._no_threads.set()

        monkeypatch.setattr(asyncio, "to_thread", to_thread)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._due, (self.now + max(0.0, seconds), next(self._order), future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        while self._due:
            await settle()  # whatever can run first runs first (and may sleep for less)
            if self._threads:
                await self._no_threads.wait()
                continue
            due, _, future = heapq.heappop(self._due)
            if future.done():  # the sleeper was cancelled: its deadline moves nothing
                continue
            self.now = max(self.now, due)
            future.set_result(None)
