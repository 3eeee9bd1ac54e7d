"""Changes made behind a client's back (sign-ins, admin deletes, Entra Connect sync) and hand-made devices."""

from __future__ import annotations

from datetime import timedelta

import pytest

from simulator import RunningSimulator, Tenant
from tests.simulator.helpers import client


def test_out_of_band_changes_are_not_client_writes(small_tenant: Tenant) -> None:
    tenant = small_tenant
    oid = tenant.truth.ids_of("stale")[0]
    tenant.sign_in(oid, tenant.now)
    tenant.update_device(oid, displayName="RENAMED-1")
    device = tenant.device_json(oid)
    assert device is not None and device["displayName"] == "RENAMED-1"
    assert device["approximateLastSignInDateTime"] == tenant.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert tenant.truth.expected_class(oid) == "stale"  # the truth describes the fleet as generated
    with pytest.raises(KeyError, match="colour"):
        tenant.update_device(oid, colour="red")
    tenant.delete_device(oid)
    assert tenant.device_json(oid) is None and tenant.writes == [] and tenant.write_attempts == []
    with pytest.raises(KeyError):
        tenant.delete_device(oid)


async def test_deleted_hybrid_devices_come_back_pending_after_a_sync(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    registered = tenant.truth.ids_with("hybrid", without=("pending", "protected_group"))[0]
    pending = tenant.truth.ids_with("pending", without=("protected_group",))[0]
    cloud = tenant.truth.ids_with("windows", without=("hybrid",))[0]
    old = {oid: tenant.device_json(oid) for oid in (registered, pending)}
    async with client(simulator) as http:
        for oid in (registered, pending, cloud):
            assert (await http.delete(f"/devices/{oid}")).status_code == 204
    created = tenant.sync_from_on_premises()
    assert len(created) == 2 and tenant.sync_from_on_premises() == []  # each comes back once
    for oid, new in zip((registered, pending), created, strict=True):
        device = tenant.device_json(new)
        before = old[oid]
        assert device is not None and before is not None
        assert device["onPremisesSecurityIdentifier"] == before["onPremisesSecurityIdentifier"]
        assert device["displayName"] == before["displayName"]
        assert device["id"] != before["id"] and device["deviceId"] != before["deviceId"]
        assert device["alternativeSecurityIds"] == [] and device["trustType"] == "ServerAd"
        assert tenant.truth.expected_class(new) == "pending"
        assert {"recreated_by_sync", "pending"} <= tenant.truth.flags(new)
    async with client(simulator) as http:
        fetched = await http.get(f"/devices/{created[0]}")
    assert fetched.status_code == 200


def test_hand_made_devices(small_tenant: Tenant) -> None:
    tenant = small_tenant
    owner = tenant.users[4]
    oid = tenant.add_device(
        display_name="TEST-PC",
        expected_class="stale",
        last_sign_in=tenant.now - timedelta(days=200),
        registered_at=tenant.now - timedelta(days=400),
        owner=owner.user_principal_name,
        bitlocker_keys=2,
        intune_last_sync=tenant.now - timedelta(days=3),
        extension_attributes={"extensionAttribute15": "note"},
        flags=("edge_case",),
    )
    pending = tenant.add_device(
        display_name="TEST-PENDING",
        expected_class="pending",
        trust_type="ServerAd",
        registered=False,
        last_sign_in=None,
        on_premises_last_sync=tenant.now - timedelta(days=20),
    )
    device = tenant.device_json(oid)
    assert device is not None and device["extensionAttributes"]["extensionAttribute15"] == "note"
    assert tenant.owner_of(oid) is owner and oid in tenant.devices_of_user(owner.id)
    assert {"added", "edge_case", "has_owner", "bitlocker", "intune", "intune_recent"} <= tenant.truth.flags(oid)
    assert tenant.truth.expected_class(oid) == "stale" and oid in tenant.truth.ids_of("stale")
    index = tenant.devices.find(oid)
    assert index is not None and len(tenant.bitlocker_keys(index)) == 2
    pending_json = tenant.device_json(pending)
    assert (
        pending_json is not None and pending_json["alternativeSecurityIds"] == [] and pending_json["onPremisesSecurityIdentifier"]
    )
    assert pending_json["onPremisesLastSyncDateTime"] == (tenant.now - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tenant.set_bitlocker_keys(oid, 0)
    tenant.set_intune_last_sync(oid, None)
    assert tenant.bitlocker_keys(index) == [] and tenant.intune_record(index) is None
    with pytest.raises(ValueError, match="expected_class"):
        tenant.add_device(display_name="X", expected_class="broken")
    with pytest.raises(KeyError, match="no user"):
        tenant.add_device(display_name="X", expected_class="healthy", owner="ghost@contoso.example")
