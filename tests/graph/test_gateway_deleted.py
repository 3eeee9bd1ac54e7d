"""The gateway's deleted-items calls (Graph beta) over HTTP to the simulator: read a deleted device, restore it,
and say which permission or role is missing when Graph refuses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from shared.errors import ConfigError
from shared.graph import GraphGateway
from shared.graph.deleted import beta_root
from simulator import RunningSimulator, Tenant
from tests.graph.conftest import RoleToken


def live_of(tenant: Tenant, trust_type: str) -> str:
    store = tenant.devices
    return next(store.object_id(i) for i in range(len(store))
                if not store.deleted[i] and store.profile_fields(i)["trustType"] == trust_type)  # fmt: skip


async def test_a_deleted_cloud_device_is_read_from_deleted_items(simulator: RunningSimulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    oid = live_of(tenant, "AzureAd")
    live = await gateway.get_device(oid)
    assert live is not None
    assert await gateway.deleted_device(oid) is None  # live: not in deleted items
    tenant.clock = lambda: datetime(2025, 6, 3, 1, 0, tzinfo=UTC)
    tenant.delete_device(oid)
    found = await gateway.deleted_device(oid)
    assert found is not None
    assert found.deleted_at == datetime(2025, 6, 3, 1, 0, tzinfo=UTC)
    assert found.device.id == oid and found.device.device_id == live.device_id
    assert found.device.display_name == live.display_name and found.device.extension_attributes is not None
    assert await gateway.get_device(oid) is None


async def test_hybrid_and_malformed_ids_are_never_in_deleted_items(simulator: RunningSimulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    oid = live_of(tenant, "ServerAd")
    tenant.delete_device(oid)
    before = simulator.stats.requests
    assert await gateway.deleted_device("../users") is None
    assert simulator.stats.requests == before  # refused before a request was built
    assert await gateway.deleted_device(oid) is None
    result = await gateway.restore_deleted_device(oid)
    assert result.status == 404 and result.error_code == "Request_ResourceNotFound"
    assert tenant.device_json(oid) is None


async def test_restore_brings_the_device_back(simulator: RunningSimulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    oid = live_of(tenant, "Workplace")
    tenant.delete_device(oid)
    result = await gateway.restore_deleted_device(oid)
    assert result.status == 200 and result.request_id
    assert result.body is not None and result.body["id"] == oid and result.body["isCompliant"] is False
    device = await gateway.get_device(oid)
    assert device is not None and device.is_compliant is False
    assert [(w.method, w.object_id) for w in tenant.writes] == [("POST", oid)]


async def test_a_refused_restore_names_the_permission_and_the_roles(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = simulator.tenant
    oid = live_of(tenant, "AzureAd")
    tenant.delete_device(oid)
    gateway = make_gateway(simulator, RoleToken(["Device.Read.All"]))
    assert await gateway.deleted_device(oid) is not None  # reading needs Device.Read.All only
    result = await gateway.restore_deleted_device(oid)
    assert result.status == 403 and result.error_code == "Authorization_RequestDenied"
    message = result.error_message or ""
    assert "Device.ReadWrite.All" in message and "Cloud Device Administrator" in message
    assert "do not name the application permission" in message
    assert tenant.device_json(oid) is None and tenant.writes == []


def test_the_beta_root_sits_next_to_the_v1_root() -> None:
    assert beta_root("https://graph.microsoft.com/v1.0") == "https://graph.microsoft.com/beta"
    assert beta_root("http://127.0.0.1:8123/v1.0") == "http://127.0.0.1:8123/beta"
    with pytest.raises(ConfigError, match="GRAPH_BASE_URL"):
        beta_root("https://graph.microsoft.com/graph")


def test_deleted_item_rows_match_beta_paths_only() -> None:
    from shared.graph.permissions import REQUIRED_PERMISSIONS, endpoint_for

    restore = endpoint_for("POST", "/beta/directory/deletedItems/0b9e7c4e-1111-2222-3333-444455556666/restore")
    assert restore is REQUIRED_PERMISSIONS["restore_deleted_device"] and not restore.confirmed
    assert endpoint_for("GET", "/beta/directory/deletedItems/microsoft.graph.device") is REQUIRED_PERMISSIONS[
        "list_deleted_devices"
    ]
    assert endpoint_for("POST", "/directory/deletedItems/0b9e7c4e-1111-2222-3333-444455556666/restore") is None


async def test_device_groups_reads_the_direct_memberships(simulator: RunningSimulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    group = next(g for g in tenant.group_index.items if g.devices and not tenant.devices.deleted[g.devices[0]])
    oid = tenant.devices.object_id(group.devices[0])
    expected = {g.id for g in tenant.group_index.items if group.devices[0] in g.devices}
    found = await gateway.device_groups(oid)
    assert {g.id for g in found} == expected and group.id in expected
    assert all(g.display_name for g in found)
    lonely = next(tenant.devices.object_id(i) for i in range(len(tenant.devices))
                  if not any(i in g.devices for g in tenant.group_index.items))  # fmt: skip
    assert await gateway.device_groups(lonely) == []
