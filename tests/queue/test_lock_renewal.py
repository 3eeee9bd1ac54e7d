"""Lock renewal on the embedded queue, and the drain keeping a slow message (and surviving an audit outage)
without a second delivery."""

from __future__ import annotations

import asyncio

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


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """Virtual time for the queues' locks, the drain's renewals and waits, and the worker (SQLite takes none)."""
    clock = VirtualClock(start=1_750_000_000.0)
    clock.hold_during_threads(monkeypatch)
    return clock


class SlowWorker:
    """Stands in for Worker: takes its (virtual) time, or finds the audit store down for the first calls."""

    def __init__(self, clock: VirtualClock, seconds: float = 0.0, audit_down: int = 0) -> None:
        self.clock = clock
        self.seconds = seconds
        self.audit_down = audit_down
        self.calls: list[int] = []

    async def handle(self, body: bytes, *, message_id: str, delivery_count: int) -> Handled:
        self.calls.append(delivery_count)
        if self.audit_down:
            self.audit_down -= 1
            raise AuditUnavailable("audit store is down (test)")
        await self.clock.sleep(self.seconds)
        return Handled("complete", "acted", "disable")

    async def flush_digests(self) -> int:
        return 0


async def test_drain_keeps_a_slow_message_locked(tmp_path, clock):
    queue = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=1.0, clock=clock)
    thief = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=1.0, clock=clock)
    stolen = []

    async def steal() -> None:
        for _ in range(10_000):  # start once the drain holds the message (event-loop turns: no time passes)
            if worker.calls:
                break
            await asyncio.sleep(0)
        deadline = clock.now + 3.0
        while clock.now < deadline:
            stolen.extend(await thief.receive())
            await clock.sleep(0.05)

    try:
        await queue.send([OutgoingMessage(message_id="slow", body=b"x")])
        worker = SlowWorker(clock, seconds=3.0)  # three lock durations (renewed every third of one)
        stats, _ = await asyncio.gather(drain(queue, worker, sleep=clock.sleep, timer=clock), steal())
        assert stolen == [] and worker.calls == [1] and stats.completed == 1
        assert clock.slept.count(queue.lock_seconds / 3) >= 8  # the lock was renewed all along
    finally:
        await queue.close()
        await thief.close()


async def test_drain_waits_out_an_audit_outage_without_spending_deliveries(tmp_path, clock):
    queue = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=0.3, max_deliveries=2, clock=clock)
    try:
        await queue.send([OutgoingMessage(message_id="m", body=b"x")])
        worker = SlowWorker(clock, audit_down=4)
        stats = await drain(queue, worker, sleep=clock.sleep, timer=clock)
        assert worker.calls == [1, 1, 1, 1, 1]  # retried in place: still the first delivery
        assert stats.completed == 1 and stats.dead_lettered == 0 and queue.dead_letters() == []
        backoff = [s for s in clock.slept if s not in (queue.lock_seconds / 3, worker.seconds)]  # not renewals, work
        assert backoff == [0.25, 0.5, 1.0, 2.0]  # waited in place, backing off, while the lock was renewed
    finally:
        await queue.close()
