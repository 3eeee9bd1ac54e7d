"""The one batcher: order, size and time flushes, failures confined to their batch, cancellation never hangs.

Time is a fake sleep the test releases by hand, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.batcher import Batcher
from tests.support.manual_time import ManualSleep, settle


class Recorder:
    """A flush that records each batch; `gate` (when set) holds every flush until it is opened."""

    def __init__(self, *, fail_on: object = None, answer: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.answer = answer  # answer only this many items per call (a store that commits a prefix)
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.most_running = 0
        self.tasks: list[asyncio.Task[object]] = []

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.fail_on in items:
                raise OSError(f"store down while writing {self.fail_on}")
            take = len(items) if self.answer is None else self.answer
            return [item * 10 for item in items[:take]]
        finally:
            self.running -= 1


async def test_each_caller_gets_its_own_result_in_order_of_submission():
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=4)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert flush.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batcher.flushes == 3


async def test_a_full_batch_goes_out_at_once_and_a_partial_one_after_the_delay():
    sleep, flush = ManualSleep(), Recorder()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=3, delay=5.0, sleep=sleep)
    full = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await settle()
    assert flush.batches == [[0, 1, 2]] and all(t.done() for t in full)  # no time had to pass
    partial = [asyncio.create_task(batcher.submit(i)) for i in (3, 4)]
    await settle()
    assert flush.batches == [[0, 1, 2]] and sleep.asked == [5.0]  # waiting for more to join
    sleep.elapse()
    assert await asyncio.gather(*partial) == [30, 40]
    assert flush.batches == [[0, 1, 2], [3, 4]]


async def test_a_failed_flush_fails_exactly_its_own_batch():
    flush = Recorder(fail_on=3)
    batcher: Batcher[int, int] = Batcher(flush, max_batch=2)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)), return_exceptions=True)
    assert [type(r) for r in results] == [int, int, OSError, OSError, int]
    assert (results[0], results[1], results[4]) == (0, 10, 40)
    assert flush.batches == [[0, 1], [2, 3], [4]]


async def test_a_store_that_commits_a_prefix_is_called_again_for_the_rest():
    flush = Recorder(answer=2)
    batcher: Batcher[int, int] = Batcher(flush, max_batch=5)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert flush.batches == [[0, 1, 2, 3, 4], [2, 3, 4], [4]]


@pytest.mark.parametrize("answers", [0, 3])
async def test_a_flush_that_answers_nothing_or_too_much_fails_its_batch(answers):
    async def flush(items: Sequence[int]) -> list[int]:
        return [0] * answers

    batcher: Batcher[int, int] = Batcher(flush, max_batch=5)
    with pytest.raises(RuntimeError, match=f"{answers} results for a batch of 2"):
        await asyncio.gather(batcher.submit(1), batcher.submit(2))


async def test_a_caller_cancelled_before_the_flush_is_dropped():
    sleep, flush = ManualSleep(), Recorder()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=10, delay=1.0, sleep=sleep)
    gone, kept = asyncio.create_task(batcher.submit(1)), asyncio.create_task(batcher.submit(2))
    await settle()
    gone.cancel()
    await settle()
    sleep.elapse()
    assert await kept == 20
    assert gone.cancelled() and flush.batches == [[2]]  # the cancelled caller's item never went out


async def test_a_caller_cancelled_during_the_flush_does_not_disturb_the_others():
    flush = Recorder()
    flush.gate = asyncio.Event()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=10)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await settle()
    tasks[1].cancel()
    flush.gate.set()
    await settle()
    assert tasks[1].cancelled() and tasks[0].result() == 0 and tasks[2].result() == 20
    assert flush.batches == [[0, 1, 2]]


async def test_a_cancelled_flush_cancels_its_callers_instead_of_leaving_them_waiting():
    flush = Recorder()
    flush.gate = asyncio.Event()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=2)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(4)]
    await settle()
    assert flush.batches == [[0, 1]]  # one batch at a time: the second waits
    flush.tasks[0].cancel()  # the task sending the first batch (say, the loop is shutting down)
    await settle()
    assert tasks[0].cancelled() and tasks[1].cancelled()
    flush.gate.set()  # the next batch still goes out
    assert await asyncio.gather(tasks[2], tasks[3]) == [20, 30]
    assert flush.batches == [[0, 1], [2, 3]]


async def test_a_cancelled_batcher_cancels_the_callers_still_waiting():
    flush = Recorder()
    flush.gate = asyncio.Event()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=1)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await settle()
    assert batcher._runner is not None
    batcher._runner.cancel()  # what loop shutdown does to the task that forms batches
    await settle()
    assert tasks[1].cancelled() and tasks[2].cancelled()  # waiting, not yet sent: nobody is left hanging
    flush.gate.set()
    assert await tasks[0] == 0 and flush.batches == [[0]]


async def test_parallel_sends_are_capped():
    flush = Recorder()
    flush.gate = asyncio.Event()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=1, parallel=2)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(5)]
    await settle()
    assert flush.running == 2 and len(flush.batches) == 2
    flush.gate.set()
    assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
    assert flush.most_running == 2 and sorted(b[0] for b in flush.batches) == [0, 1, 2, 3, 4]


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(Recorder(), max_batch=0)
