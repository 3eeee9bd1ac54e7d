"""Each stage and healthy, diagnosed through the real Graph gateway from simulator state plus dsregcmd fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from shared.diagnosis import diagnose_device
from shared.graph import GraphGateway
from shared.policy import Policy
from simulator import SimulatorThread, Tenant
from tests.diagnosis.fakes import TENANT_ID, fixture

FIXTURE_IDS = {
    "win11_entra_joined_healthy.txt": "4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13",
    "win11_prt_missing.txt": "1e3a5c7e-9b1d-4f3a-8c5e-7b9d1f3a5c7e",
    "win11_mismatched_tenant.txt": "c5e7a9b1-3d5f-4a7c-9e1b-3d5f7a9c1e3b",
    "win11_device_deleted.txt": "7d9f1b3d-5f7a-4c9e-b1d3-f5a7c9e1b3d5",
}


class World:
    """One small simulated tenant with hand-made devices for each case."""

    def __init__(self, sim: SimulatorThread, tenant: Tenant) -> None:
        self.sim, self.tenant = sim, tenant
        now = tenant.now
        user = tenant.users[5]
        self.user = user.user_principal_name
        self.healthy = tenant.add_device(
            display_name="DIAG-HEALTHY",
            expected_class="healthy",
            last_sign_in=now - timedelta(days=2),
            registered_at=now - timedelta(days=300),
            owner=user.id,
        )
        self.unmanaged = tenant.add_device(
            display_name="DIAG-NOMDM",
            expected_class="unmanaged",
            last_sign_in=now - timedelta(days=2),
            registered_at=now - timedelta(days=30),
            is_managed=False,
        )
        self.pending = tenant.add_device(
            display_name="DIAG-PENDING",
            expected_class="pending",
            trust_type="ServerAd",
            registered=False,
            registered_at=None,
            last_sign_in=None,
        )
        self.disabled = tenant.add_device(
            display_name="DIAG-DISABLED",
            expected_class="healthy",
            account_enabled=False,
            last_sign_in=now - timedelta(days=40),
            registered_at=now - timedelta(days=300),
        )
        # a user at the quota: three stale devices and two in use
        self.heavy = tenant.users[6]
        for i, days in enumerate((200, 300, 400, 2, 3)):
            tenant.add_device(
                display_name=f"HEAVY-{i}",
                expected_class="stale" if days > 90 else "healthy",
                owner=self.heavy.id,
                last_sign_in=now - timedelta(days=days),
                registered_at=now - timedelta(days=500),
            )

    def device_id(self, object_id: str) -> str:
        return self.tenant.device_json(object_id)["deviceId"]

    def local(self, name: str, object_id: str | None = None) -> str:
        """A fixture whose DeviceId/TenantId are this tenant's (the mismatched-tenant one keeps its foreign tenant)."""
        text = fixture(name).replace(TENANT_ID, self.tenant.tenant_id)
        if object_id is not None:
            text = text.replace(FIXTURE_IDS[name], self.device_id(object_id))
        return text

    async def diagnose(self, ref: str, *, local: str | None = None, user: str | None = None):
        async with GraphGateway(self.sim.base_url, None) as graph:
            return await diagnose_device(
                graph, ref, dsregcmd_text=local, user=user, policy=Policy(), now=self.tenant.now, tenant_id=self.tenant.tenant_id
            )


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    tenant = Tenant.generate(devices=300, seed=11)
    with SimulatorThread(tenant) as sim:
        yield World(sim, tenant)


async def test_stage1_join_scope_none(world: World) -> None:
    world.tenant.set_join_policy("none")
    try:
        d = await world.diagnose("DESKTOP-N3W0PC1", local=world.local("win11_not_joined.txt"), user=world.user)
    finally:
        world.tenant.set_join_policy("all")
    assert d.stage == 1 and d.confidence == "confirmed"
    assert d.user == world.user


async def test_stage1_quota_lists_the_users_stale_devices(world: World) -> None:
    world.tenant.set_join_policy("all", quota=5)
    try:
        d = await world.diagnose(
            "DESKTOP-N3W0PC1", local=world.local("win11_not_joined.txt"), user=world.heavy.user_principal_name
        )
    finally:
        world.tenant.set_join_policy("all", quota=50)
    assert d.stage == 1 and "quota of 5" in d.summary
    names = [s.display_name for s in d.remediation]
    assert {"HEAVY-0", "HEAVY-1", "HEAVY-2"} <= set(names) and not {"HEAVY-3", "HEAVY-4"} & set(names)
    assert names.index("HEAVY-2") < names.index("HEAVY-1") < names.index("HEAVY-0")  # oldest activity first
    for stale in d.remediation:  # every proposal is a device the scan would also call stale (or similar)
        assert world.tenant.truth.expected_class(stale.id) in ("stale", "no_signin_record", "expired_disabled", "duplicate")


async def test_stage2_pending_object(world: World) -> None:
    d = await world.diagnose("DIAG-PENDING", local=fixture("win10_hybrid_pending_sync_join.txt"))
    assert d.stage == 2 and d.device is not None and d.device.id == world.pending
    assert d.recommends_rejoin  # registration is incomplete


async def test_stage3_other_tenant_and_disabled_object(world: World) -> None:
    d = await world.diagnose("DIAG-HEALTHY", local=world.local("win11_mismatched_tenant.txt", world.healthy))
    assert d.stage == 3 and "another tenant" in d.summary
    d = await world.diagnose("DIAG-DISABLED", local=world.local("win11_device_deleted.txt", world.disabled))
    assert d.stage == 3 and "disabled" in d.summary and not d.recommends_rejoin


async def test_stage3_local_device_id_unknown_to_the_tenant(world: World) -> None:
    d = await world.diagnose("DIAG-HEALTHY", local=world.local("win11_entra_joined_healthy.txt"))  # DeviceId not replaced
    assert d.stage == 3 and "DeviceId" in d.summary


async def test_stage4_no_object_and_discovery_failing(world: World) -> None:
    d = await world.diagnose("LT-0977", local=fixture("win10_hybrid_discovery_failed.txt"))
    assert d.stage == 4 and d.confidence == "confirmed" and d.device is None


async def test_stage5_prt_missing_and_not_in_mdm(world: World) -> None:
    d = await world.diagnose("DIAG-HEALTHY", local=world.local("win11_prt_missing.txt", world.healthy))
    assert d.stage == 5 and "Primary Refresh Token" in d.summary
    d = await world.diagnose(world.unmanaged)
    assert d.stage == 5 and "MDM" in d.summary


async def test_healthy_by_name_id_and_device_id(world: World) -> None:
    local = world.local("win11_entra_joined_healthy.txt", world.healthy)
    for ref in ("DIAG-HEALTHY", world.healthy, world.device_id(world.healthy)):
        d = await world.diagnose(ref, local=local)
        assert d.stage == "healthy" and d.confidence == "confirmed", ref
        assert d.device is not None and d.device.id == world.healthy
    assert (await world.diagnose("DIAG-HEALTHY")).user == world.user  # the registered owner, when no user is named
