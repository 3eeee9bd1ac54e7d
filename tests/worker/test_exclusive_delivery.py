"""Two deliveries of one command never act together: in one process the worker serialises them, across
processes the command lease does; a lost lease stops the write; a slow protected-group read is shared."""

from __future__ import annotations

import asyncio

from shared.commands import encode
from shared.worker.lease import SqliteLease
from tests.worker.conftest import decisions_of
from tests.worker.fakes import FakeGraph, command, device


class SlowGraph(FakeGraph):
    """Reads take a moment, so concurrent deliveries really overlap; protected-group reads are counted."""

    def __init__(self, *devices, delay: float = 0.05) -> None:
        super().__init__(*devices)
        self.delay = delay
        self.group_reads = 0

    async def get_device(self, object_id):
        await asyncio.sleep(self.delay)
        return await super().get_device(object_id)

    async def group_device_ids(self, group_id):
        self.group_reads += 1
        await asyncio.sleep(self.delay)
        return await super().group_device_ids(group_id)


async def test_concurrent_copies_in_one_process_act_once(make_worker, audit):
    dev = device("x1")
    graph = SlowGraph(dev)
    cmd = command(dev)
    worker = make_worker(graph)
    results = await asyncio.gather(*(worker.handle(encode(cmd), message_id=f"m{i}") for i in range(4)))
    assert len(graph.writes) == 1
    assert len(await decisions_of(audit, cmd.command_id)) == 1
    assert sum(not r.redelivered for r in results) == 1 and all(r.decision == "acted" for r in results)


async def test_concurrent_copies_in_two_processes_act_once(make_worker, audit, tmp_path):
    dev = device("x2")
    graph = SlowGraph(dev)
    cmd = command(dev)
    leases = [SqliteLease(tmp_path / "leases.sqlite", ttl=5) for _ in range(2)]  # one connection per "process"
    workers = [make_worker(graph, lease=lease) for lease in leases]
    try:
        await asyncio.gather(*(w.handle(encode(cmd), message_id=f"m{i}") for i, w in enumerate(workers)))
    finally:
        for lease in leases:
            await lease.close()
    assert len(graph.writes) == 1
    assert len(await decisions_of(audit, cmd.command_id)) == 1


async def test_a_dead_holders_lease_expires(make_worker, audit, tmp_path):
    dev = device("x3")
    graph = FakeGraph(dev)
    cmd = command(dev)
    lease = SqliteLease(tmp_path / "leases.sqlite", ttl=0.3)
    try:
        assert await lease.acquire(cmd.command_id, "a-worker-that-was-killed")  # never renewed, never released
        handled = await make_worker(graph, lease=lease).handle(encode(cmd), message_id="m1", delivery_count=2)
    finally:
        await lease.close()
    assert handled.decision == "acted" and len(graph.writes) == 1


async def test_a_lost_lease_means_no_write(make_worker, audit, tmp_path):
    dev = device("x4")
    graph = FakeGraph(dev)
    cmd = command(dev)

    class LosingLease(SqliteLease):
        async def renew(self, command_id, holder):
            return False  # another delivery took it over

    lease = LosingLease(tmp_path / "leases.sqlite", ttl=0.03)
    worker = make_worker(SlowGraph(dev, delay=0.05), lease=lease)
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


async def test_protected_group_members_are_read_once_for_concurrent_commands(make_worker):
    from tests.worker.conftest import enforce

    devices = [device(f"p{i}") for i in range(20)]
    graph = SlowGraph(*devices)
    group = "0b6d4a36-9f7e-4c3e-9a55-3b1f4e2d7c10"
    graph.groups[group] = {"someone-else"}
    worker = make_worker(graph, enforce(protect={"groups": [group]}))
    await asyncio.gather(*(worker.handle(encode(command(d)), message_id=d.id) for d in devices))
    assert graph.group_reads == 1
