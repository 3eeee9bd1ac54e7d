"""Reads through msgraph-sdk over HTTP against the simulator, checked against its ground truth."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import msgspec
import pytest

from shared.errors import GraphError, GraphNotFound
from shared.graph import GraphGateway
from shared.models import DEVICE_SELECT, Device
from simulator import Tenant
from tests.graph.conftest import Starter, drain


def truth_devices(tenant: Tenant) -> dict[str, dict]:
    return {oid: tenant.device_json(oid) for oid in tenant.object_ids()}


async def test_every_device_decodes_to_the_simulators_json(
    make_tenant: Callable[..., Tenant], start_simulator: Starter, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = make_tenant(devices=2000)
    sim = await start_simulator(tenant)
    gateway = make_gateway(sim)
    pages = [page async for page in gateway.iter_devices(page_size=300)]

    assert [len(p) for p in pages[:-1]] == [300] * (len(pages) - 1)
    assert len(pages) == math.ceil(tenant.device_count / 300)
    truth = truth_devices(tenant)
    seen = [device for page in pages for device in page]
    assert len(seen) == len(truth) == tenant.device_count
    assert {d.id for d in seen} == set(truth)
    for device in seen:
        assert isinstance(device, Device)
        expected = {name: value for name, value in truth[device.id].items() if name in DEVICE_SELECT}
        assert msgspec.to_builtins(device) == expected
    assert sim.stats.by_path["GET /devices"] == len(pages)


async def test_select_narrows_what_is_asked_and_decoded(simulator, gateway: GraphGateway) -> None:
    devices = await drain(gateway.iter_devices(select=["displayName", "trustType"]))
    assert len(devices) == simulator.tenant.device_count
    first = simulator.tenant.device_json(devices[0].id)
    assert (devices[0].display_name, devices[0].trust_type) == (first["displayName"], first["trustType"])
    assert all(d.operating_system is None and d.physical_ids == [] for d in devices)


@pytest.mark.parametrize(
    ("filter", "keep"),
    [
        ("trustType eq 'ServerAd'", lambda d: d["trustType"] == "ServerAd"),
        ("accountEnabled eq false and operatingSystem eq 'Windows'",
         lambda d: d["accountEnabled"] is False and d["operatingSystem"] == "Windows"),
        ("startsWith(displayName,'DESKTOP-')", lambda d: d["displayName"].startswith("DESKTOP-")),
        ("trustType ne 'AzureAd'", lambda d: d["trustType"] != "AzureAd"),
        ("approximateLastSignInDateTime eq null", lambda d: d["approximateLastSignInDateTime"] is None),
        ("not(accountEnabled eq true)", lambda d: d["accountEnabled"] is not True),
    ],
)
async def test_filters_pass_through(simulator, gateway: GraphGateway, filter: str, keep: Callable[[dict], bool]) -> None:
    expected = {oid for oid, d in truth_devices(simulator.tenant).items() if keep(d)}
    devices = await drain(gateway.iter_devices(filter=filter, page_size=50))
    assert expected, "the fleet should contain matches for every filter form"
    assert {d.id for d in devices} == expected


async def test_advanced_queries_carry_consistency_level_and_count(simulator, gateway: GraphGateway) -> None:
    # The simulator answers 400 Request_UnsupportedQuery to `ne` without ConsistencyLevel + $count=true:
    with pytest.raises(GraphError) as refused:
        await drain(gateway.iter_devices(filter="trustType ne 'AzureAd'", advanced=False))
    assert refused.value.status == 400
    # ...and the gateway adds both on its own when the filter needs them.
    devices = await drain(gateway.iter_devices(filter="trustType ne 'AzureAd'"))
    assert devices and all(d.trust_type != "AzureAd" for d in devices)


async def test_early_stop_cancels_the_prefetched_page(simulator, gateway: GraphGateway) -> None:
    async for page in gateway.iter_devices(page_size=100):
        assert len(page) == 100
        break
    assert simulator.stats.by_path["GET /devices"] <= 2
    assert await gateway.get_device(page[0].id) == page[0]


async def test_single_device_reads_and_404(simulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    oid = tenant.object_ids()[3]
    device = await gateway.get_device(oid)
    assert device is not None and msgspec.to_builtins(device) == {
        k: v for k, v in tenant.device_json(oid).items() if k in DEVICE_SELECT
    }
    assert await gateway.get_device("00000000-0000-0000-0000-000000000000") is None
    assert await gateway.get_device_by_device_id(device.device_id) == device
    with pytest.raises(GraphNotFound) as gone:
        await gateway.registered_owners("00000000-0000-0000-0000-000000000000")
    assert gone.value.request_id and gone.value.status == 404


async def test_find_devices_by_object_id_device_id_and_name(simulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    truth = truth_devices(tenant)
    names = Counter(d["displayName"] for d in truth.values())
    duplicate = next(name for name, n in names.items() if n > 1)  # re-joined devices share a name
    found = await gateway.find_devices(duplicate)
    assert {d.id for d in found} == {oid for oid, d in truth.items() if d["displayName"] == duplicate}
    oid, record = next(iter(truth.items()))
    assert [d.id for d in await gateway.find_devices(oid)] == [oid]
    assert [d.id for d in await gateway.find_devices(record["deviceId"])] == [oid]
    assert await gateway.find_devices("NO-SUCH-PC") == []


async def test_owners_users_and_groups(simulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    oid = next(o for o in tenant.object_ids() if tenant.owner_of(o) is not None)
    owner = tenant.owner_of(oid)
    owners = await gateway.registered_owners(oid)
    assert [(o.id, o.user_principal_name, o.mail) for o in owners] == [(owner.id, owner.user_principal_name, owner.mail)]

    by_upn = await gateway.get_user(owner.user_principal_name)
    assert by_upn is not None and by_upn.id == owner.id
    assert await gateway.get_user(owner.id) == by_upn
    assert await gateway.get_user("nobody@contoso.example") is None

    registered = await gateway.user_registered_devices(owner.id)
    assert sorted(d.id for d in registered) == sorted(tenant.devices_of_user(owner.id))

    group = tenant.group_index.items[0]
    for g in tenant.groups:
        if tenant.group_index.transitive_devices(g):
            group = g
            break
    expected = {tenant.devices.object_id(i) for i in tenant.group_index.transitive_devices(group)
                if not tenant.devices.deleted[i]}
    assert await gateway.group_device_ids(group.id) == expected


async def test_check_member_groups_asks_twenty_at_a_time(simulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    group = next(g for g in tenant.groups if tenant.group_index.transitive_users(g))
    user = tenant.users[tenant.group_index.transitive_users(group)[0]]
    others = [f"00000000-0000-0000-0000-{n:012d}" for n in range(30)]
    member_of = await gateway.check_member_groups(user.id, [*others, group.id])
    assert group.id in member_of
    assert not member_of & set(others)
    assert simulator.stats.by_path["POST /users/{key}/checkMemberGroups"] == 2


async def test_policy_bitlocker_intune(simulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    policy = await gateway.device_registration_policy()
    assert policy["userDeviceQuota"] == tenant.policy.user_device_quota
    assert "azureADJoin" in policy

    index = next(i for i in range(len(tenant.devices)) if tenant.bitlocker_keys(i))
    device_id = tenant.devices.device_id(index)
    assert sorted(await gateway.bitlocker_key_ids(device_id)) == sorted(k["id"] for k in tenant.bitlocker_keys(index))

    enrolled = next(i for i in range(len(tenant.devices)) if tenant.intune_record(i))
    last_sync = await gateway.managed_device_last_sync(tenant.devices.device_id(enrolled))
    assert last_sync == datetime.fromisoformat(tenant.intune_record(enrolled)["lastSyncDateTime"])
    missing = next(i for i in range(len(tenant.devices)) if not tenant.intune_record(i))
    assert await gateway.managed_device_last_sync(tenant.devices.device_id(missing)) is None


async def test_send_mail_lands_in_the_outbox(simulator, gateway: GraphGateway) -> None:
    tenant = simulator.tenant
    result = await gateway.send_mail(tenant.sender_upn, ["owner@contoso.example"], "Your device", "<p>Hello</p>")
    assert result.status == 202 and result.request_id
    [mail] = tenant.outbox
    assert (mail["to"], mail["subject"], mail["body"], mail["request_id"]) == (
        ["owner@contoso.example"], "Your device", "<p>Hello</p>", result.request_id,
    )


async def test_next_link_to_another_host_is_refused(gateway: GraphGateway) -> None:
    with pytest.raises(GraphError, match="another host"):
        gateway._next("https://attacker.example/v1.0/devices?$skiptoken=x", {})


def test_an_answer_of_the_wrong_shape_is_a_graph_error_naming_the_request() -> None:
    import httpx

    from shared.graph import wire
    from shared.graph.gateway import _read

    request = httpx.Request("GET", "http://127.0.0.1:1/v1.0/devices")
    response = httpx.Response(200, content=b'{"value": [{"displayName": "PC"}]}', request=request, headers={"request-id": "r1"})
    with pytest.raises(GraphError) as caught:
        _read(wire.DEVICE_PAGE, response)
    assert "GET /v1.0/devices does not have the expected shape" in str(caught.value)
    assert "id" in str(caught.value) and caught.value.request_id == "r1"
