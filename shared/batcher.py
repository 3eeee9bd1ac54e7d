"""One group-commit batcher: concurrent callers share one flush (a transaction, a $batch call), each gets its own answer.

Used by the audit stores (many appends, one transaction), the worker's audit writer (each caller's entries
all or none), its device writer (PATCH/DELETE grouped into the gateway's $batch) and the SQLite budget.
What every user relies on:

- items are flushed in the order they were submitted; with `parallel=1` one batch is out at a time, so
  batches also land in order (an audit chain needs that);
- a batch goes out once `max_batch` items wait, or `delay` seconds after the batcher woke (0: after one
  turn of the event loop, so callers that are ready join it); while `parallel` batches are out, the next
  one keeps filling;
- a failed flush fails exactly the futures of that batch; later batches are still flushed;
- a caller cancelled before its item went out: the item is dropped (never flushed, so no write nobody
  waits for); after: the result is ignored;
- a flush task that is itself cancelled (loop shutdown) cancels the futures it holds, and a cancelled
  batcher cancels the ones still waiting: nobody waits forever for an answer that cannot come.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: Writes a non-empty prefix of the batch (normally all of it) and returns one result per item of that prefix,
#: in order; the rest of the batch is flushed next. Raising fails the batch.
type Flush[I, R] = Callable[[Sequence[I]], Awaitable[Sequence[R]]]
type Sleep = Callable[[float], Awaitable[object]]


@dataclass(slots=True)
class _Slot[I, R]:
    item: I
    future: asyncio.Future[R]


class Batcher[I, R]:
    """Coalesces concurrent `submit` calls into as few `flush` calls as possible (see the module doc)."""

    def __init__(
        self, flush: Flush[I, R], *, max_batch: int, delay: float = 0.0, parallel: int = 1, sleep: Sleep = asyncio.sleep
    ) -> None:
        if max_batch < 1 or parallel < 1 or delay < 0:
            raise ValueError(f"need max_batch >= 1, parallel >= 1, delay >= 0; got {max_batch}, {parallel}, {delay}")
        self._flush = flush
        self._max_batch = max_batch
        self._delay = delay
        self._parallel = parallel
        self._sleep = sleep
        self._pending: deque[_Slot[I, R]] = deque()
        self._runner: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._full: asyncio.Future[None] | None = None  # resolved when `max_batch` items wait (ends a linger)
        self._freed: asyncio.Future[None] | None = None  # resolved when a send finished (frees a slot)
        self.flushes = 0  # flush calls that succeeded

    async def submit(self, item: I) -> R:
        """Flush `item` with whatever else is waiting; returns its own result or raises its batch's error."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append(_Slot(item, future))
        if len(self._pending) >= self._max_batch:
            _resolve(self._full)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())  # not tied to one caller's cancellation
        return await future  # a cancelled caller cancels its future: `_take` then drops the item

    async def _run(self) -> None:
        try:
            while self._pending:
                await self._linger()
                while len(self._sending) >= self._parallel:
                    self._freed = asyncio.get_running_loop().create_future()
                    await _first(self._freed)
                batch = self._take()
                if batch:
                    task = asyncio.create_task(self._send(batch))
                    self._sending.add(task)
                    task.add_done_callback(self._sent)
        except BaseException as exc:
            self._abandon_pending(exc)
            raise

    async def _linger(self) -> None:
        """Let the batch fill: one loop turn, or up to `delay` seconds unless it is full sooner."""
        if len(self._pending) >= self._max_batch:
            return
        if self._delay == 0:
            await asyncio.sleep(0)
            return
        self._full = asyncio.get_running_loop().create_future()
        await _first(self._full, asyncio.ensure_future(self._sleep(self._delay)))

    def _take(self) -> list[_Slot[I, R]]:
        batch: list[_Slot[I, R]] = []
        while self._pending and len(batch) < self._max_batch:
            slot = self._pending.popleft()
            if not slot.future.done():  # done = cancelled by its caller: dropped, never flushed
                batch.append(slot)
        return batch

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        _resolve(self._freed)

    async def _send(self, batch: list[_Slot[I, R]]) -> None:
        while batch:
            try:
                results = await self._flush([slot.item for slot in batch])
                if not 0 < len(results) <= len(batch):
                    raise RuntimeError(f"flush answered {len(results)} results for a batch of {len(batch)}")
            except Exception as exc:
                _fail(batch, exc)
                return
            except BaseException:
                _fail(batch, None)  # cancelled (or the process is stopping): cancel, never leave them hanging
                raise
            self.flushes += 1
            for slot, result in zip(batch, results, strict=False):
                if not slot.future.done():
                    slot.future.set_result(result)
            batch = [slot for slot in batch[len(results) :] if not slot.future.done()]

    def _abandon_pending(self, exc: BaseException) -> None:
        pending, self._pending = list(self._pending), deque()
        _fail(pending, exc if isinstance(exc, Exception) else None)


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


async def _first(*waiters: asyncio.Future[Any]) -> None:
    """Wait until one of `waiters` is done, then cancel the others (timers included)."""
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _fail(slots: Sequence[_Slot[Any, Any]], exc: Exception | None) -> None:
    """Fail each waiting future with `exc`, or cancel it when there is no error to give (a cancellation)."""
    for slot in slots:
        if slot.future.done():
            continue
        if exc is None:
            slot.future.cancel()
        else:
            slot.future.set_exception(exc)
