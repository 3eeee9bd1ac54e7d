"""A small tenant in the simulator with one device entra-janitor disabled, and the settings that point the app at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import bootstrap, tags
from shared.audit.review import verify_log
from shared.keep.token import make_token
from shared.policy import Policy, policy_from_data
from shared.ports import AuditQuery, AuditRecord
from shared.queue import open_sqlite
from shared.worker import drain, open_worker
from simulator import SimulatorThread, Tenant

SECRET = "keep-link-secret-0123456789abcdefghijklmnop"
RUN = "run-leave"


class World:
    """The tenant, its simulator, and the devices the keep tests use."""

    def __init__(self, sim: SimulatorThread, tenant: Tenant) -> None:
        self.sim, self.tenant = sim, tenant
        now = tenant.now
        self.owner = tenant.users[3]
        self.other = tenant.users[4]
        disabled = tags.Tag("disabled", now - timedelta(days=3), "stale", RUN).render()
        self.laptop = tenant.add_device(
            display_name="LAPTOP-ONLEAVE",
            expected_class="healthy",
            owner=self.owner.id,
            account_enabled=False,
            last_sign_in=now - timedelta(days=120),
            registered_at=now - timedelta(days=700),
            extension_attributes={"extensionAttribute15": disabled},
        )
        self.desktop = tenant.add_device(
            display_name="DESKTOP-ELSE",
            expected_class="healthy",
            owner=self.other.id,
            last_sign_in=now - timedelta(days=2),
            registered_at=now - timedelta(days=300),
        )

    def token(self, device: str | None = None, owner: str | None = None, expires: datetime | None = None) -> str:
        expires = expires or datetime.now(UTC) + timedelta(days=30)
        return make_token(SECRET.encode(), device or self.laptop, owner or self.owner.id, expires)

    def device(self, object_id: str | None = None) -> dict[str, Any]:
        found = self.tenant.device_json(object_id or self.laptop)
        assert found is not None
        return found


def start_world() -> Iterator[World]:
    tenant = Tenant.generate(devices=200, seed=41)
    with SimulatorThread(tenant) as sim:
        yield World(sim, tenant)


def set_env(monkeypatch: pytest.MonkeyPatch, world: World, base_url: str = "https://janitor.example.net") -> None:
    for name, value in {
        "GRAPH_BASE_URL": world.sim.base_url,
        "GRAPH_AUTH": "anonymous",
        "KEEP_LINK_SECRET": SECRET,
        "PUBLIC_BASE_URL": base_url,
    }.items():
        monkeypatch.setenv(name, value)


ENFORCE: Policy = policy_from_data({"mode": "enforce"})


async def work_queue(policy: Policy = ENFORCE) -> int:
    """Drain the embedded queue with a worker built from the settings (as `janitor work` does)."""
    worker = open_worker(policy=policy)
    queue = open_sqlite()
    try:
        stats = await drain(queue, worker, until_empty=True)
    finally:
        await queue.close()
        for port in (worker.graph, worker.audit, worker.durable_budget):
            await port.close()
    return stats.received


async def queued() -> int:
    """Messages waiting in the embedded queue."""
    async with open_sqlite() as queue:
        return queue.counts()["active"]


async def records(**query: Any) -> list[AuditRecord]:
    audit = bootstrap.audit_log()
    try:
        return [r async for r in audit.iter_records(AuditQuery(**query))]
    finally:
        await audit.close()


async def chain_intact() -> bool:
    audit = bootstrap.audit_log()
    try:
        return (await verify_log(audit)).intact
    finally:
        await audit.close()
