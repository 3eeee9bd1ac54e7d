"""Command leases, SQLite (local processes) and Table Storage on Azurite (Function instances): one protocol.

Acquire with a TTL, renew, release, steal only once expired; racing holders get exactly one lease. The
clock is injected: expiry is moved by hand, never waited for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from shared.errors import TransientError
from shared.worker.lease import CommandLease, SqliteLease

TTL = 30.0


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


type OpenLease = Callable[[], CommandLease]


@pytest.fixture(params=["sqlite", "table"])
async def leases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[OpenLease, Clock]]:
    """A factory of lease objects over one store (each its own connection: one per "instance") and their clock."""
    clock = Clock()
    opened: list[CommandLease] = []

    if request.param == "sqlite":
        def open_one() -> CommandLease:
            opened.append(SqliteLease(tmp_path / "leases.sqlite", ttl=TTL, clock=clock))
            return opened[-1]
    else:
        from azure.data.tables.aio import TableClient

        from shared.worker.lease_table import TableLease

        azurite = request.getfixturevalue("azurite")
        table = request.getfixturevalue("azurite_table_name")

        def open_one() -> CommandLease:
            client = TableClient.from_connection_string(azurite.connection_string, table_name=table)
            opened.append(TableLease(client, ttl=TTL, clock=clock))
            return opened[-1]

    yield open_one, clock
    for lease in opened:
        await lease.close()


async def test_a_held_lease_is_refused_to_others_and_granted_again_to_its_holder(leases):
    open_lease, _ = leases
    one, other = open_lease(), open_lease()
    assert await one.acquire("cmd-1", "a")
    assert not await other.acquire("cmd-1", "b")
    assert await other.acquire("cmd-1", "a")  # the same delivery asking again (any instance)
    assert await other.acquire("cmd-2", "b")  # another command is independent


async def test_an_expired_lease_is_stolen_and_its_old_holder_can_no_longer_renew_or_release_it(leases):
    open_lease, clock = leases
    one, other = open_lease(), open_lease()
    assert await one.acquire("cmd", "dead")
    clock.now += TTL - 1
    assert not await other.acquire("cmd", "b")  # not yet expired
    clock.now += 2
    assert await other.acquire("cmd", "b")
    assert not await one.renew("cmd", "dead")
    await one.release("cmd", "dead")  # must not drop b's lease
    assert not await one.acquire("cmd", "c")


async def test_renewing_extends_by_the_ttl_and_releasing_frees_at_once(leases):
    open_lease, clock = leases
    one, other = open_lease(), open_lease()
    assert await one.acquire("cmd", "a")
    clock.now += TTL - 1
    assert await one.renew("cmd", "a")
    clock.now += TTL - 1  # past the first expiry, inside the renewed one
    assert not await other.acquire("cmd", "b")
    await one.release("cmd", "a")
    assert await other.acquire("cmd", "b")


async def test_an_expired_but_untaken_lease_can_still_be_renewed_by_its_holder(leases):
    open_lease, clock = leases
    one = open_lease()
    assert await one.acquire("cmd", "a")
    clock.now += TTL * 2
    assert await one.renew("cmd", "a")
    assert not await open_lease().acquire("cmd", "b")


@pytest.mark.parametrize("expired", [False, True], ids=["free", "expired"])
async def test_racing_instances_get_exactly_one_lease(leases, expired):
    open_lease, clock = leases
    if expired:
        assert await open_lease().acquire("cmd", "dead")
        clock.now += TTL + 1
    racers = [open_lease() for _ in range(6)]
    won = await asyncio.gather(*(lease.acquire("cmd", f"h{i}") for i, lease in enumerate(racers)))
    assert sum(won) == 1
    winner = won.index(True)
    assert all([await lease.renew("cmd", f"h{i}") == (i == winner) for i, lease in enumerate(racers)])


async def test_command_ids_a_row_key_could_not_hold_get_their_own_leases(leases):
    open_lease, _ = leases
    lease = open_lease()
    assert await lease.acquire("a/b#c?d\\e\x01", "x")
    assert await lease.acquire("a_b_c_d_e_", "y")  # a lossy key would have made these one lease
    assert not await open_lease().acquire("a/b#c?d\\e\x01", "z")


async def test_table_leases_of_dead_holders_are_swept(azurite, azurite_table_name):
    from azure.data.tables.aio import TableClient

    from shared.worker.lease_table import FORGOTTEN_AFTER_SECONDS, PARTITION, TableLease

    clock = Clock()
    client = TableClient.from_connection_string(azurite.connection_string, table_name=azurite_table_name)
    lease = TableLease(client, ttl=TTL, clock=clock)
    try:
        assert await lease.acquire("forgotten", "killed-worker")
        assert await lease.acquire("recent", "killed-later")
        clock.now += FORGOTTEN_AFTER_SECONDS + TTL + 1
        assert await lease.acquire("recent", "killed-later")  # renewed: not forgotten
        assert await lease.acquire("live", "w")
        await lease.release("live", "w")
        rows = [e["command_id"] async for e in client.query_entities(f"PartitionKey eq '{PARTITION}'")]
    finally:
        await lease.close()
    assert rows == ["recent"]


async def test_an_unreachable_lease_table_is_a_transient_error():
    from azure.data.tables.aio import TableClient

    from shared.worker.lease_table import TableLease
    from tests.fixtures.azurite import DEV_ACCOUNT, DEV_KEY, free_port

    conn = (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"TableEndpoint=http://127.0.0.1:{free_port()}/{DEV_ACCOUNT};")
    lease = TableLease(TableClient.from_connection_string(conn, table_name="leases", retry_total=0), ttl=TTL)
    try:
        with pytest.raises(TransientError, match="lease table 'leases' could not be used"):
            await lease.acquire("cmd", "a")
    finally:
        await lease.close()


def test_open_lease_follows_the_budget(monkeypatch, tmp_path):
    from shared.worker.lease import open_lease
    from shared.worker.lease_table import TableLease

    monkeypatch.setenv("JANITOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUEUE_LOCK_SECONDS", "45")
    monkeypatch.setenv("AUDIT_BACKEND", "sqlite")
    local = open_lease()
    assert isinstance(local, SqliteLease) and local.ttl == 45 and local.path.parent == tmp_path
    asyncio.run(local.close())
    monkeypatch.setenv("AUDIT_BACKEND", "table")
    monkeypatch.setenv("AUDIT_TABLE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    monkeypatch.setenv("BUDGET_TABLE_NAME", "budgetleases")
    cloud = open_lease()
    assert isinstance(cloud, TableLease) and cloud.ttl == 45
    asyncio.run(cloud.close())


async def test_a_cancelled_call_keeps_the_connection_until_its_transaction_ends(tmp_path: Path):
    """A heartbeat cancelled mid-renewal used to free the connection while its transaction still ran in its
    thread; the release that followed then failed ("cannot start a transaction within a transaction")."""
    inside, go_on = threading.Event(), threading.Event()
    slow = False

    def clock() -> float:
        if slow:  # called inside the transaction: hold it open until the test lets go
            inside.set()
            go_on.wait(10)
        return 1_700_000_000.0

    lease = SqliteLease(tmp_path / "leases.sqlite", ttl=TTL, clock=clock)
    try:
        assert await lease.acquire("cmd", "me")
        slow = True
        renewing = asyncio.create_task(lease.renew("cmd", "me"))
        assert await asyncio.to_thread(inside.wait, 10)
        slow = False
        renewing.cancel()
        releasing = asyncio.create_task(lease.release("cmd", "me"))
        for _ in range(20):
            await asyncio.sleep(0)  # the release reaches its thread while the renewal's transaction is open
        go_on.set()
        await releasing  # waits for the connection, then releases: no error
        with pytest.raises(asyncio.CancelledError):
            await renewing
        assert await lease.acquire("cmd", "someone else")  # it was released, not left to expire
    finally:
        go_on.set()
        await lease.close()


async def test_a_table_release_survives_a_late_renewal_of_its_own_heartbeat(azurite, azurite_table_name, monkeypatch):
    """A heartbeat cancelled on our side may still be carried out by the table after the release read the row;
    the release used to give up on the changed ETag and leave the lease until it expired."""
    from azure.data.tables.aio import TableClient

    from shared.worker.lease_table import TableLease

    def open_one() -> TableLease:
        client = TableClient.from_connection_string(azurite.connection_string, table_name=azurite_table_name)
        return TableLease(client, ttl=TTL, clock=Clock())

    lease, late, other = open_one(), open_one(), open_one()
    try:
        assert await lease.acquire("cmd", "me")
        read = lease._read  # pyright: ignore[reportPrivateUsage]
        renewed: list[bool] = []

        async def read_then_renewed(command_id: str):
            row = await read(command_id)
            if not renewed:
                renewed.append(await late.renew("cmd", "me"))  # our own renewal, landing after the read
            return row

        monkeypatch.setattr(lease, "_read", read_then_renewed)
        await lease.release("cmd", "me")
        assert renewed == [True]
        assert await other.acquire("cmd", "someone else")  # released, not left to expire
    finally:
        for one in (lease, late, other):
            await one.close()
