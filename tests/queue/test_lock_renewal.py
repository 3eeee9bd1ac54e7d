"""Lock renewal on the embedded queue, and the drain keeping a slow message (and surviving an audit outage)
without a second delivery."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.errors import AuditUnavailable, MessageLockLost
from shared.ports import OutgoingMessage
from shared.queue import SqliteQueue
from shared.worker import Handled, drain
from tests.support.manual_time import VirtualClock


async def test_renew_extends_the_lock_and_an_expired_one_cannot_be_renewed(tmp_path):
    clock = VirtualClock(start=1_750_000_000.0)  # both "processes" read the same (virtual) time
    queue = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=1.0, clock=clock)
    other = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=1.0, clock=clock)
    try:
        await queue.send([OutgoingMessage(message_id="m1", body=b"x")])
        [message] = await queue.receive()
        for _ in range(4):
            clock.advance(0.5)
            await queue.renew_lock(message)
            assert await other.receive() == []  # still ours after 2 s, two lock durations
        clock.advance(1.3)
        with pytest.raises(MessageLockLost, match="renew the lock"):
            await queue.renew_lock(message)
        [again] = await other.receive()
        assert again.delivery_count == 2
    finally:
        await queue.close()
        await other.close()


class SlowWorker:
    """Stands in for Worker: takes its time, or finds the audit store down for the first calls."""

    def __init__(self, seconds: float = 0.0, audit_down: int = 0) -> None:
        self.seconds = seconds
        self.audit_down = audit_down
        self.calls: list[int] = []

    async def handle(self, body: bytes, *, message_id: str, delivery_count: int) -> Handled:
        self.calls.append(delivery_count)
        if self.audit_down:
            self.audit_down -= 1
            raise AuditUnavailable("audit store is down (test)")
        await asyncio.sleep(self.seconds)
        return Handled("complete", "acted", "disable")

    async def flush_digests(self) -> int:
        return 0


async def test_drain_keeps_a_slow_message_locked(tmp_path):
    queue = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=1.0)
    thief = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=1.0)
    stolen = []

    async def steal() -> None:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            stolen.extend(await thief.receive())
            await asyncio.sleep(0.05)

    try:
        await queue.send([OutgoingMessage(message_id="slow", body=b"x")])
        worker = SlowWorker(seconds=3.0)  # three lock durations (renewed every third of one)
        stats, _ = await asyncio.gather(drain(queue, worker), steal())
        assert stolen == [] and worker.calls == [1] and stats.completed == 1
    finally:
        await queue.close()
        await thief.close()


async def test_drain_waits_out_an_audit_outage_without_spending_deliveries(tmp_path):
    queue = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=0.3, max_deliveries=2)
    try:
        await queue.send([OutgoingMessage(message_id="m", body=b"x")])
        worker = SlowWorker(audit_down=4)
        stats = await drain(queue, worker)
        assert worker.calls == [1, 1, 1, 1, 1]  # retried in place: still the first delivery
        assert stats.completed == 1 and stats.dead_lettered == 0 and queue.dead_letters() == []
    finally:
        await queue.close()
