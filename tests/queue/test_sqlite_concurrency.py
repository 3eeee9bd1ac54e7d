"""Several receivers on one queue file (threads and processes) never hold the same message at once,
and a worker killed with SIGKILL mid-message loses nothing: its lock runs out and the message comes back."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from shared.errors import MessageLockLost
from shared.ports import OutgoingMessage, ReceivedMessage
from shared.queue import SqliteQueue
from tests.support.manual_time import VirtualClock

REPO = Path(__file__).resolve().parents[2]

# A worker process: says it is ready, waits for "go" on stdin, drains the queue, prints each completed delivery.
DRAINER = """
import asyncio, json, sys
from shared.queue import SqliteQueue

async def main(path):
    q = SqliteQueue(path, lock_seconds=60, poll_interval=0.01)
    print("ready", flush=True)
    sys.stdin.readline()
    while True:
        got = await q.receive(max_messages=3, wait_seconds=0.3)
        if not got:
            break
        for m in got:
            await q.complete(m)  # raises (and fails the process) if another receiver held it
            print(json.dumps([m.message_id, m.delivery_count]))
    await q.close()

asyncio.run(main(sys.argv[1]))
"""

# A worker that takes one message, reports it, and hangs until it is killed.
HOLDER_LOCK_SECONDS = 30
HOLDER = f"""
import asyncio, json, sys
from shared.queue import SqliteQueue

async def main(path):
    q = SqliteQueue(path, lock_seconds={HOLDER_LOCK_SECONDS})
    [m] = await q.receive(wait_seconds=5)
    print(json.dumps([m.message_id, m.lock_token, m.delivery_count, m.body.decode()]), flush=True)
    await asyncio.sleep(600)

asyncio.run(main(sys.argv[1]))
"""


async def _python(code: str, *args: str) -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code, *args, cwd=REPO, stdin=pipe, stdout=pipe, stderr=pipe)


async def _reap(procs: list[asyncio.subprocess.Process]) -> None:
    for p in procs:
        if p.returncode is None:
            p.kill()
            await p.wait()


def _batch(n: int) -> list[OutgoingMessage]:
    return [OutgoingMessage(f"cmd-{i:04d}", f"payload {i}".encode()) for i in range(n)]


async def test_two_receivers_in_threads_never_get_the_same_message(tmp_path):
    path = tmp_path / "q.sqlite3"
    sender = SqliteQueue(path)
    await sender.send(_batch(200))
    receivers = [SqliteQueue(path, poll_interval=0.01) for _ in range(2)]
    held: set[str] = set()
    log: list[tuple[int, str]] = []

    async def drain(index: int, q: SqliteQueue) -> None:
        while got := await q.receive(max_messages=2):
            for m in got:
                assert m.message_id not in held, f"{m.message_id} delivered while another receiver held it"
                held.add(m.message_id)
            await asyncio.sleep(0)  # let the other receiver run while these are held
            for m in got:
                await q.complete(m)
                held.discard(m.message_id)
                log.append((index, m.message_id))

    try:
        await asyncio.gather(*(drain(i, q) for i, q in enumerate(receivers)))
        counts = Counter(mid for _, mid in log)
        assert len(counts) == 200 and set(counts.values()) == {1}
        assert {i for i, _ in log} == {0, 1}  # both really took part
        assert sender.counts() == {"active": 0, "scheduled": 0, "locked": 0, "dead_lettered": 0}
    finally:
        for q in [sender, *receivers]:
            await q.close()


async def test_three_worker_processes_drain_one_file_without_double_delivery(tmp_path):
    path = tmp_path / "q.sqlite3"
    queue = SqliteQueue(path)
    await queue.send(_batch(300))
    procs = [await _python(DRAINER, str(path)) for _ in range(3)]
    try:
        for p in procs:  # all started and holding an open queue before any begins
            assert await asyncio.wait_for(p.stdout.readline(), 30) == b"ready\n", (await p.stderr.read()).decode()
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate(b"go\n") for p in procs)), 60)
    finally:
        await _reap(procs)
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    per_worker = [[json.loads(line) for line in out.decode().splitlines()] for out, _ in outputs]
    deliveries = [d for worker in per_worker for d in worker]
    counts = Counter(mid for mid, _ in deliveries)
    assert len(counts) == 300 and set(counts.values()) == {1}, "every message completed exactly once"
    assert {count for _, count in deliveries} == {1}, "no message needed a second delivery"
    assert sum(1 for worker in per_worker if worker) >= 2, "the workers really ran side by side"
    assert queue.counts() == {"active": 0, "scheduled": 0, "locked": 0, "dead_lettered": 0}
    await queue.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")
async def test_worker_killed_mid_message_loses_nothing(tmp_path):
    path = tmp_path / "q.sqlite3"
    clock = VirtualClock(start=time.time())  # this process's clock, moved on by hand once the worker is dead
    queue = SqliteQueue(path, clock=clock)
    await queue.send([OutgoingMessage("cmd-1", b"disable device 42")])
    proc = await _python(HOLDER, str(path))
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, (await proc.stderr.read()).decode()
        message_id, token, delivery_count, body = json.loads(line)
        assert (message_id, delivery_count) == ("cmd-1", 1)
        assert await queue.receive() == []  # held by the worker
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    finally:
        await _reap([proc])
    # Its lock runs out (the worker took it less than a minute after `clock` started: it answered within 30 s).
    clock.advance(HOLDER_LOCK_SECONDS + 60)
    [again] = await queue.receive()
    assert (again.message_id, again.body, again.delivery_count) == ("cmd-1", b"disable device 42", 2)
    dead_workers_delivery = ReceivedMessage(message_id, body.encode(), delivery_count, token)
    with pytest.raises(MessageLockLost):
        await queue.complete(dead_workers_delivery)
    await queue.complete(again)
    assert queue.counts() == {"active": 0, "scheduled": 0, "locked": 0, "dead_lettered": 0}
    await queue.close()
