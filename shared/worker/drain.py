"""Drain a peek-lock queue with the worker: receive in batches, handle many commands concurrently.

Used by `janitor work` (the embedded SQLite queue) and the benchmark; in Azure the Functions host plays
this part and calls `Worker.handle` once per message. Concurrency lets the gates of many commands read
Graph in parallel while their writes are grouped into $batch calls paced at the write budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.errors import MessageLockLost, TransientError
from shared.ports import QueueReceiver, ReceivedMessage
from shared.worker.handler import Handled, Worker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DrainStats:
    received: int = 0
    completed: int = 0
    dead_lettered: int = 0
    abandoned: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def retry_delay(delivery_count: int) -> float:
    """Back-off before a failed message is released again (the audit store or Graph may need a moment)."""
    return min(0.05 * 2 ** max(0, delivery_count - 1), 2.0)


async def drain(
    receiver: QueueReceiver,
    worker: Worker,
    *,
    concurrency: int = 64,
    until_empty: bool = True,
    receive_batch: int = 32,
    idle_wait: float = 1.0,
    progress: Callable[[DrainStats], None] | None = None,
) -> DrainStats:
    """Handle messages until the queue is empty (or forever when `until_empty` is False)."""
    stats = DrainStats()
    started = time.monotonic()
    slots = asyncio.Semaphore(concurrency)
    inflight: set[asyncio.Task[None]] = set()

    async def one(message: ReceivedMessage) -> None:
        try:
            await _settle(receiver, worker, message, stats)
        finally:
            slots.release()
            if progress is not None:
                progress(stats)

    while True:
        free = concurrency - len(inflight)
        wanted = min(receive_batch, free)
        messages = await receiver.receive(max_messages=wanted, wait_seconds=0.0) if wanted > 0 else []
        for message in messages:
            await slots.acquire()
            stats.received += 1
            task = asyncio.create_task(one(message))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        if messages:
            continue
        if inflight:
            await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            continue
        if until_empty:
            break
        await asyncio.sleep(idle_wait)
    await worker.flush_digests()
    stats.seconds = time.monotonic() - started
    return stats


async def _settle(receiver: QueueReceiver, worker: Worker, message: ReceivedMessage, stats: DrainStats) -> None:
    try:
        handled: Handled = await worker.handle(message.body, message_id=message.message_id, delivery_count=message.delivery_count)
    except TransientError as exc:
        log.warning("message %s: %s; released for a retry", message.message_id, exc)
        await asyncio.sleep(retry_delay(message.delivery_count))
        stats.abandoned += 1
        await _quietly(receiver.abandon(message), stats)
        return
    except Exception as exc:  # a bug: never lose the message, never act on it twice (the audit log decides)
        log.exception("message %s: unexpected error; released for a retry", message.message_id)
        stats.errors.append(f"{message.message_id}: {exc!r}")
        stats.abandoned += 1
        await _quietly(receiver.abandon(message), stats)
        return
    if handled.settle == "dead_letter":
        stats.dead_lettered += 1
        await _quietly(receiver.dead_letter(message, handled.dead_letter_reason or "Failed", handled.reason[:1024]), stats)
    else:
        stats.completed += 1
        await _quietly(receiver.complete(message), stats)


async def _quietly(settle, stats: DrainStats) -> None:
    """A lost lock means the message comes back; its redelivery finds the decision already recorded."""
    try:
        await settle
    except MessageLockLost as exc:
        stats.errors.append(str(exc))
