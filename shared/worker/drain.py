"""Drain a peek-lock queue with the worker: receive in batches, handle many commands concurrently.

Used by `janitor work` (the embedded SQLite queue) and the benchmark; in Azure the Functions host plays
this part and calls `Worker.handle` once per message. Concurrency lets the gates of many commands read
Graph in parallel while their writes are grouped into $batch calls paced at the write budget.

Like the Functions host with Service Bus, the drain renews the peek-lock of every message it is working on
(when the receiver can), so a slow command (429 storms, a long Retry-After) is never handed to a second
worker while the first is still on it. When the audit store is down a command is retried in place, its
message still locked, for up to `audit_wait` seconds: an outage does not burn the message's deliveries.
Every wait goes through `sleep` and is measured with `timer` (monotonic seconds): tests pass virtual ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.errors import AuditUnavailable, MessageLockLost, TransientError
from shared.ports import QueueReceiver, ReceivedMessage
from shared.worker.handler import Handled, Worker

log = logging.getLogger(__name__)

type Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class DrainStats:
    received: int = 0
    completed: int = 0
    dead_lettered: int = 0
    abandoned: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list[str])


#: Seconds a command waits in place, message locked, for the audit store to come back before it is released.
AUDIT_WAIT_SECONDS = 120.0


def retry_delay(delivery_count: int) -> float:
    """Back-off before a failed message is released again (the audit store or Graph may need a moment)."""
    return min(0.05 * 2 ** max(0, delivery_count - 1), 2.0)


def audit_retry_delay(attempt: int) -> float:
    """Back-off between in-place retries while the audit store is down."""
    return min(0.25 * 2 ** attempt, 5.0)


async def drain(
    receiver: QueueReceiver,
    worker: Worker,
    *,
    concurrency: int = 64,
    until_empty: bool = True,
    receive_batch: int = 32,
    idle_wait: float = 1.0,
    progress: Callable[[DrainStats], None] | None = None,
    audit_wait: float = AUDIT_WAIT_SECONDS,
    sleep: Sleep = asyncio.sleep,
    timer: Callable[[], float] = time.monotonic,
) -> DrainStats:
    """Handle messages until the queue is empty (or forever when `until_empty` is False)."""
    stats = DrainStats()
    started = timer()
    slots = asyncio.Semaphore(concurrency)
    inflight: set[asyncio.Task[None]] = set()
    held: dict[str, ReceivedMessage] = {}  # lock token -> message being worked on (its lock is renewed)
    renewing = asyncio.create_task(_renew_locks(receiver, held, stats, sleep))

    async def one(message: ReceivedMessage) -> None:
        held[message.lock_token] = message
        try:
            await _settle(receiver, worker, message, stats, audit_wait, sleep, timer)
        finally:
            held.pop(message.lock_token, None)
            slots.release()
            if progress is not None:
                progress(stats)

    try:
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
            await sleep(idle_wait)
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    await worker.flush_digests()
    stats.seconds = timer() - started
    return stats


async def _renew_locks(receiver: QueueReceiver, held: dict[str, ReceivedMessage], stats: DrainStats, sleep: Sleep) -> None:
    """Every third of the lock duration, renew the lock of each message still being worked on."""
    renew = getattr(receiver, "renew_lock", None)
    lock_seconds = getattr(receiver, "lock_seconds", None)
    if renew is None or not lock_seconds:
        return
    while True:
        await sleep(lock_seconds / 3)
        for token, message in list(held.items()):
            if token not in held:
                continue  # settled meanwhile
            try:
                await renew(message)
            except MessageLockLost as exc:
                if held.pop(token, None) is not None:  # still being worked on: another receiver may have it now
                    stats.errors.append(str(exc))
                    log.warning("%s (the command's lease still keeps two deliveries from acting at once)", exc)
            except Exception as exc:  # the queue is busy or down: the next round tries again
                log.warning("could not renew the lock of message %s: %s", message.message_id, exc)


async def handle_waiting_for_audit(
    worker: Worker,
    body: bytes,
    *,
    message_id: str,
    delivery_count: int,
    audit_wait: float,
    sleep: Sleep = asyncio.sleep,
    timer: Callable[[], float] = time.monotonic,
) -> Handled:
    """worker.handle, retried in place (the message stays locked) while the audit store is down, for up to
    `audit_wait` seconds; then AuditUnavailable is raised and the message is released for a later delivery."""
    deadline = timer() + audit_wait
    attempt = 0
    while True:
        try:
            return await worker.handle(body, message_id=message_id, delivery_count=delivery_count)
        except AuditUnavailable as exc:
            if timer() >= deadline:
                raise
            delay = audit_retry_delay(attempt)
            attempt += 1
            log.warning("message %s: %s; retrying in %.1f s", message_id, exc, delay)
            await sleep(delay)


async def _settle(
    receiver: QueueReceiver,
    worker: Worker,
    message: ReceivedMessage,
    stats: DrainStats,
    audit_wait: float,
    sleep: Sleep,
    timer: Callable[[], float],
) -> None:
    try:
        handled: Handled = await handle_waiting_for_audit(
            worker, message.body, message_id=message.message_id, delivery_count=message.delivery_count,
            audit_wait=audit_wait, sleep=sleep, timer=timer,
        )
    except TransientError as exc:
        log.warning("message %s: %s; released for a retry", message.message_id, exc)
        await sleep(retry_delay(message.delivery_count))
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


async def _quietly(settle: Awaitable[None], stats: DrainStats) -> None:
    """A lost lock means the message comes back; its redelivery finds the decision already recorded."""
    try:
        await settle
    except MessageLockLost as exc:
        stats.errors.append(str(exc))
