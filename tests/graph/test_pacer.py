"""The write pacer releases writes at the budget's rate, never more than the budget in any window."""

from __future__ import annotations

import asyncio
from bisect import bisect_left

import pytest

from shared.graph.pacer import WritePacer
from tests.support.manual_time import VirtualClock


def max_in_any_window(stamps: list[float], window: float) -> int:
    """The most events inside any half-open window [t, t + window) that starts at an event."""
    return max(bisect_left(stamps, stamps[i] + window) - i for i in range(len(stamps)))


async def test_budget_holds_in_every_window_and_rate_is_close_to_it() -> None:
    clock = VirtualClock()
    pacer = WritePacer(3000, 150, clock=clock, sleep=clock.sleep)
    stamps: list[float] = []
    for _ in range(9000):  # three windows' worth, one at a time
        await pacer.acquire(1)
        stamps.append(clock.now)
    assert max_in_any_window(stamps, 150) <= 3000
    assert pacer.released == 9000
    rate = (len(stamps) - pacer.burst) / stamps[-1]
    assert rate >= 0.95 * 3000 / 150


async def test_concurrent_batches_share_the_budget_first_come_first_served() -> None:
    clock = VirtualClock()
    pacer = WritePacer(600, 30, clock=clock, sleep=clock.sleep)
    assert pacer.burst == 20
    order: list[int] = []
    stamps: list[float] = []

    async def batch(n: int) -> None:
        await pacer.acquire(20)
        order.append(n)
        stamps.extend([clock.now] * 20)

    await asyncio.gather(*(batch(n) for n in range(90)))  # 1,800 writes = 3 windows
    assert order == list(range(90))
    assert max_in_any_window(stamps, 30) <= 600
    assert stamps[-1] >= (1800 - 600) / (600 / 30)  # could not have finished faster than the budget allows


async def test_acquire_rejects_more_than_the_burst() -> None:
    pacer = WritePacer(100, 10)
    with pytest.raises(ValueError, match=r"1\.\.10"):
        await pacer.acquire(11)


def test_rejects_an_empty_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        WritePacer(0, 150)
