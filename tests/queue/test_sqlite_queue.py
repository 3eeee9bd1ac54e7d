"""The embedded queue keeps Service Bus's promises: peek-lock, redelivery, dead letters, schedules, dedupe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import MessageLockLost
from shared.ports import OutgoingMessage
from shared.queue import MAX_DELIVERY_COUNT_EXCEEDED, SqliteQueue
from tests.support.manual_time import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    """A settable clock (epoch seconds) so lock and schedule tests need no sleeping."""
    return VirtualClock(start=1_750_000_000.0)


@pytest.fixture
async def queue(tmp_path, clock):
    q = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=30, max_deliveries=3, clock=clock)
    yield q
    await q.close()


def msg(n: int | str, body: bytes | None = None, **kw) -> OutgoingMessage:
    return OutgoingMessage(message_id=f"m{n}", body=body if body is not None else f"body {n}".encode(), **kw)


async def test_send_receive_complete_round_trip(queue):
    sent = OutgoingMessage("m1", b'{"x": 1}', subject="disable", properties={"run": "r1", "n": 2, "dry": True})
    assert await queue.send([sent]) == 1
    [got] = await queue.receive()
    assert (got.message_id, got.body, got.subject, got.delivery_count) == ("m1", b'{"x": 1}', "disable", 1)
    assert dict(got.properties) == {"run": "r1", "n": 2, "dry": True}
    assert got.enqueued_at is not None and got.enqueued_at.tzinfo is not None
    assert queue.counts() == {"active": 0, "scheduled": 0, "locked": 1, "dead_lettered": 0}
    await queue.complete(got)
    assert await queue.receive() == []
    assert queue.counts() == {"active": 0, "scheduled": 0, "locked": 0, "dead_lettered": 0}


async def test_receive_is_fifo_and_respects_max_messages(queue):
    await queue.send([msg(i) for i in range(5)])
    first = await queue.receive(max_messages=3)
    second = await queue.receive(max_messages=3)
    assert [m.message_id for m in first] == ["m0", "m1", "m2"]
    assert [m.message_id for m in second] == ["m3", "m4"]


async def test_locked_message_is_not_delivered_twice_until_the_lock_expires(queue, clock):
    await queue.send([msg(1)])
    [first] = await queue.receive()
    clock.advance(29)
    assert await queue.receive() == []
    clock.advance(2)  # past the 30 s lock
    [again] = await queue.receive()
    assert again.message_id == "m1"
    assert again.delivery_count == 2
    assert again.lock_token != first.lock_token


async def test_complete_with_a_stale_lock_token_is_refused_and_keeps_the_new_delivery(queue, clock):
    await queue.send([msg(1)])
    [first] = await queue.receive()
    clock.advance(31)
    [second] = await queue.receive()
    with pytest.raises(MessageLockLost, match="delivered again"):
        await queue.complete(first)
    assert queue.counts()["locked"] == 1  # the new delivery is untouched
    await queue.complete(second)
    assert queue.counts() == {"active": 0, "scheduled": 0, "locked": 0, "dead_lettered": 0}


async def test_complete_after_the_lock_expired_is_refused_even_before_redelivery(queue, clock):
    await queue.send([msg(1)])
    [got] = await queue.receive()
    clock.advance(31)
    with pytest.raises(MessageLockLost, match="lock expired"):
        await queue.complete(got)
    [again] = await queue.receive()
    assert again.delivery_count == 2


async def test_settling_twice_is_refused(queue):
    await queue.send([msg(1)])
    [got] = await queue.receive()
    await queue.complete(got)
    with pytest.raises(MessageLockLost, match="no longer in the queue"):
        await queue.complete(got)


async def test_abandon_releases_the_lock_and_counts_the_delivery(queue):
    await queue.send([msg(1)])
    [got] = await queue.receive()
    await queue.abandon(got)
    [again] = await queue.receive()  # receivable at once, no lock wait
    assert again.delivery_count == 2
    with pytest.raises(MessageLockLost):
        await queue.abandon(got)  # the old token is spent


async def test_max_deliveries_by_abandon_dead_letters_with_reason(queue):
    await queue.send([msg(1, b"poison")])
    for expected in (1, 2, 3):
        [got] = await queue.receive()
        assert got.delivery_count == expected
        await queue.abandon(got)
    assert await queue.receive() == []
    [dead] = queue.dead_letters()
    assert (dead.message_id, dead.body, dead.reason, dead.delivery_count) == ("m1", b"poison", MAX_DELIVERY_COUNT_EXCEEDED, 3)
    assert "3 allowed deliveries" in dead.description
    assert queue.counts()["dead_lettered"] == 1


async def test_max_deliveries_by_lock_expiry_dead_letters_with_reason(queue, clock):
    await queue.send([msg(1)])
    for _ in range(3):
        assert len(await queue.receive()) == 1
        clock.advance(31)  # the worker "died": the lock just runs out
    assert queue.counts() == {"active": 0, "scheduled": 0, "locked": 0, "dead_lettered": 1}
    assert await queue.receive() == []
    [dead] = queue.dead_letters()
    assert dead.reason == MAX_DELIVERY_COUNT_EXCEEDED and dead.delivery_count == 3
    assert "lock expired" in dead.description


async def test_explicit_dead_letter_keeps_reason_and_description(queue):
    await queue.send([msg(1, b"not json")])
    [got] = await queue.receive()
    await queue.dead_letter(got, "InvalidCommand", "body is not JSON")
    [dead] = queue.dead_letters()
    assert (dead.reason, dead.description) == ("InvalidCommand", "body is not JSON")
    assert (dead.body, dead.delivery_count) == (b"not json", 1)
    assert dead.dead_lettered_at.tzinfo is not None
    assert await queue.receive() == []
    with pytest.raises(ValueError, match="reason"):
        await queue.dead_letter(got, "", "")


async def test_scheduled_message_is_not_receivable_before_its_time(queue, clock):
    due = datetime.fromtimestamp(clock.now, UTC) + timedelta(minutes=5)
    await queue.send([msg("later", scheduled_at=due), msg("now")])
    [now] = await queue.receive(max_messages=10)
    assert now.message_id == "mnow"
    await queue.complete(now)
    assert queue.counts()["scheduled"] == 1
    clock.advance(299)
    assert await queue.receive() == []
    clock.advance(2)
    [later] = await queue.receive()
    assert later.message_id == "mlater" and later.delivery_count == 1


async def test_scheduled_time_in_the_past_is_due_now(queue, clock):
    past = datetime.fromtimestamp(clock.now, UTC) - timedelta(hours=1)
    await queue.send([msg(1, scheduled_at=past)])
    assert len(await queue.receive()) == 1


async def test_duplicates_dropped_by_message_id_within_the_window(queue, clock):
    assert await queue.send([msg(1, b"first"), msg(1, b"same id, same send")]) == 2  # reported as sent
    assert await queue.send([msg(1, b"re-sent")]) == 1
    got = await queue.receive(max_messages=10)
    assert [(m.message_id, m.body) for m in got] == [("m1", b"first")]
    await queue.complete(got[0])
    assert await queue.send([msg(1, b"after completion, still in window")]) == 1
    assert await queue.receive() == []
    clock.advance(601)  # default window: 10 minutes
    await queue.send([msg(1, b"after the window")])
    [late] = await queue.receive()
    assert late.body == b"after the window"


async def test_long_poll_returns_as_soon_as_a_message_arrives(tmp_path):
    poll, send_at = 0.02, 0.2
    timer = VirtualClock()  # the wait is virtual: no wall-clock time passes
    sent: list[int] = []

    async def sleep(seconds: float) -> None:
        await timer.sleep(seconds)
        if timer.now >= send_at - 1e-9 and not sent:  # another process sends while the receive waits
            sent.append(await q.send([msg(1)]))

    q = SqliteQueue(tmp_path / "q.sqlite3", poll_interval=poll, timer=timer, sleep=sleep)
    try:
        got = await q.receive(wait_seconds=5)
        assert [m.message_id for m in got] == ["m1"]
        assert send_at - 1e-9 <= timer.now <= send_at + poll + 1e-9  # found on the first poll after it came
        assert all(0 < s <= poll for s in timer.slept)  # polled every poll_interval
        started, asked = timer.now, len(timer.slept)
        assert await q.receive(wait_seconds=0.2) == []
        assert timer.now - started == pytest.approx(0.2)  # the whole wait, and no longer
        assert timer.slept[asked:] and all(0 < s <= poll for s in timer.slept[asked:])
    finally:
        await q.close()


async def test_real_time_lock_expiry_redelivers(tmp_path):
    q = SqliteQueue(tmp_path / "q.sqlite3", lock_seconds=0.2, poll_interval=0.02)
    try:
        await q.send([msg(1)])
        [first] = await q.receive()
        [again] = await q.receive(wait_seconds=3)
        assert again.delivery_count == 2 and again.lock_token != first.lock_token
    finally:
        await q.close()


async def test_state_survives_reopening_the_file(tmp_path, clock):
    path = tmp_path / "q.sqlite3"
    first = SqliteQueue(path, clock=clock)
    await first.send([msg(1), msg(2)])
    [got] = await first.receive()
    await first.close()
    second = SqliteQueue(path, clock=clock)
    try:
        assert second.counts() == {"active": 1, "scheduled": 0, "locked": 1, "dead_lettered": 0}
        await second.complete(got)  # the lock token is durable, not per-connection
        await second.send([msg(1)])  # still a duplicate
        assert [m.message_id for m in await second.receive(max_messages=5)] == ["m2"]
    finally:
        await second.close()


@pytest.mark.parametrize(
    "bad, match",
    [
        (OutgoingMessage("", b"x"), "message_id"),
        (OutgoingMessage("x" * 129, b"x"), "message_id"),
        (OutgoingMessage("m", "text"), "bytes"),  # type: ignore[arg-type]
        (OutgoingMessage("m", b"x", scheduled_at=datetime(2030, 1, 1)), "timezone-aware"),
        (OutgoingMessage("m", b"x", properties={"k": 1.5}), "property"),  # type: ignore[dict-item]
    ],
)
async def test_send_refuses_malformed_messages_before_writing(queue, bad, match):
    with pytest.raises(ValueError, match=match):
        await queue.send([msg("ok"), bad])
    assert queue.counts()["active"] == 0  # nothing half-sent


async def test_closed_queue_says_so(tmp_path):
    q = SqliteQueue(tmp_path / "q.sqlite3")
    await q.close()
    with pytest.raises(RuntimeError, match="closed"):
        await q.receive()
