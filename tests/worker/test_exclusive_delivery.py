"""Two deliveries of one command never act together: in one process the worker serialises them, across
processes the command lease does; a lost lease stops the write; a slow protected-group read is shared.

Time is virtual (tests.support.manual_time.VirtualClock): reads, lease polls, renewals and lease expiry run
on it and SQLite work takes none of it, so events happen in the order of their deadlines, never by how fast
the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shared.commands import encode
from shared.worker.lease import LEASE_FILE, SqliteLease
from tests.support.manual_time import VirtualClock
from tests.worker.conftest import decisions_of
from tests.worker.fakes import FakeGraph, command, device

#: Epoch seconds the virtual clock starts at (the leases store expiry times as epoch seconds).
START = 1_750_000_000.0


class SlowGraph(FakeGraph):
    """Reads take `delay` seconds (on `sleep`), so concurrent deliveries really overlap; group reads are counted."""

    def __init__(self, *devices, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, delay: float = 0.05) -> None:
        super().__init__(*devices)
        self.sleep = sleep
        self.delay = delay
        self.group_reads = 0

    async def get_device(self, object_id):
        await self.sleep(self.delay)
        return await super().get_device(object_id)

    async def group_device_ids(self, group_id):
        self.group_reads += 1
        await self.sleep(self.delay)
        return await super().group_device_ids(group_id)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    clock = VirtualClock(START)
    clock.hold_during_threads(monkeypatch)
    return clock


def on(clock: VirtualClock) -> dict:
    """Worker keywords that put its lease waits, renewals and timers on the virtual clock."""
    return {"sleep": clock.sleep, "timer": clock}


async def test_concurrent_copies_in_one_process_act_once(make_worker, audit, clock):
    dev = device("x1")
    graph = SlowGraph(dev, sleep=clock.sleep)
    cmd = command(dev)
    worker = make_worker(graph, **on(clock))
    results = await asyncio.gather(*(worker.handle(encode(cmd), message_id=f"m{i}") for i in range(4)))
    assert len(graph.writes) == 1
    assert len(await decisions_of(audit, cmd.command_id)) == 1
    assert sum(not r.redelivered for r in results) == 1 and all(r.decision == "acted" for r in results)


async def test_concurrent_copies_in_two_processes_act_once(make_worker, audit, tmp_path, clock):
    dev = device("x2")
    graph = SlowGraph(dev, sleep=clock.sleep)
    cmd = command(dev)
    leases = [SqliteLease(tmp_path / LEASE_FILE, ttl=5, clock=clock) for _ in range(2)]  # one connection per "process"
    workers = [make_worker(graph, lease=lease, **on(clock)) for lease in leases]
    try:
        await asyncio.gather(*(w.handle(encode(cmd), message_id=f"m{i}") for i, w in enumerate(workers)))
    finally:
        for lease in leases:
            await lease.close()
    assert len(graph.writes) == 1
    assert len(await decisions_of(audit, cmd.command_id)) == 1


async def test_a_dead_holders_lease_expires(make_worker, audit, tmp_path, clock):
    dev = device("x3")
    graph = FakeGraph(dev)
    cmd = command(dev)
    lease = SqliteLease(tmp_path / LEASE_FILE, ttl=5, clock=clock)
    try:
        assert await lease.acquire(cmd.command_id, "a-worker-that-was-killed")  # never renewed, never released
        worker = make_worker(graph, lease=lease, **on(clock))
        handled = await worker.handle(encode(cmd), message_id="m1", delivery_count=2)
    finally:
        await lease.close()
    assert handled.decision == "acted" and len(graph.writes) == 1
    assert clock.now - START >= 5  # it waited for the dead holder's lease to run out, and then took it


async def test_a_lost_lease_means_no_write(make_worker, audit, tmp_path, clock):
    dev = device("x4")
    graph = FakeGraph(dev)
    cmd = command(dev)

    class LosingLease(SqliteLease):
        async def renew(self, command_id, holder):
            return False  # another delivery took it over

    lease = LosingLease(tmp_path / LEASE_FILE, ttl=3, clock=clock)  # renewed (and lost) 1 s in
    worker = make_worker(SlowGraph(dev, sleep=clock.sleep, delay=2), lease=lease, **on(clock))
    worker.writer.graph = graph  # reads are slow (the lease is lost meanwhile); writes would land in `graph`
    try:
        try:
            await worker.handle(encode(cmd), message_id="m1")
        except Exception as exc:
            assert "lost the lease" in str(exc)
        else:
            raise AssertionError("a delivery that lost its lease must not finish")
    finally:
        await lease.close()
    assert graph.writes == []
    assert await decisions_of(audit, cmd.command_id) == []
    assert clock.now - START >= 2  # the read finished after the renewal failed


async def test_protected_group_members_are_read_once_for_concurrent_commands(make_worker, clock):
    from tests.worker.conftest import enforce

    devices = [device(f"p{i}") for i in range(20)]
    graph = SlowGraph(*devices, sleep=clock.sleep)
    group = "0b6d4a36-9f7e-4c3e-9a55-3b1f4e2d7c10"
    graph.groups[group] = {"someone-else"}
    worker = make_worker(graph, enforce(protect={"groups": [group]}), **on(clock))
    await asyncio.gather(*(worker.handle(encode(command(d)), message_id=d.id) for d in devices))
    assert graph.group_reads == 1
