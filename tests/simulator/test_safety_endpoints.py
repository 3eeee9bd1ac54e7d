"""Windows LAPS metadata, Conditional Access policies, dynamic groups, and the non-Windows PATCH refusal in $batch."""

from __future__ import annotations

from simulator import RunningSimulator, make_token
from tests.simulator.helpers import assert_graph_error, client

LAPS_BASIC = make_token(["DeviceLocalCredential.ReadBasic.All"])
LAPS_FIELDS = {"id", "deviceName", "lastBackupDateTime", "refreshDateTime"}
JSON = {"Content-Type": "application/json"}


async def test_laps_metadata_for_a_device_with_a_password_and_404_without(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    oid, other = tenant.object_ids()[:2]
    tenant.set_laps(oid)
    device, plain = tenant.device_json(oid), tenant.device_json(other)
    assert device is not None and plain is not None
    async with client(simulator, Authorization=f"Bearer {LAPS_BASIC}") as http:
        found = await http.get(f"/directory/deviceLocalCredentials/{device['deviceId']}")
        selected = await http.get(
            f"/directory/deviceLocalCredentials/{device['deviceId']}", params={"$select": "id,lastBackupDateTime"}
        )
        by_object_id = await http.get(f"/directory/deviceLocalCredentials/{oid}")  # keyed by deviceId, not id
        missing = await http.get(f"/directory/deviceLocalCredentials/{plain['deviceId']}")
        passwords = await http.get(
            f"/directory/deviceLocalCredentials/{device['deviceId']}", params={"$select": "credentials"}
        )
    body = found.json()
    assert found.status_code == 200 and set(body) == LAPS_FIELDS | {"@odata.context"}
    assert body["id"] == device["deviceId"] and body["deviceName"] == device["displayName"]
    assert body["@odata.context"].endswith("$metadata#directory/deviceLocalCredentials/$entity")
    assert set(selected.json()) == {"@odata.context", "id", "lastBackupDateTime"}
    assert_graph_error(by_object_id, 404, "Request_ResourceNotFound")
    assert_graph_error(missing, 404, "Request_ResourceNotFound")
    assert "DeviceLocalCredential.Read.All" in assert_graph_error(passwords, 403, "Authorization_RequestDenied")["message"]


async def test_laps_needs_its_permission_and_goes_with_the_deleted_device(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    oid = tenant.object_ids()[0]
    tenant.set_laps(oid)
    device_id = tenant.device_json(oid)["deviceId"]  # type: ignore[index]
    async with client(simulator, Authorization=f"Bearer {make_token(['Device.Read.All'])}") as http:
        refused = await http.get(f"/directory/deviceLocalCredentials/{device_id}")
    assert "DeviceLocalCredential.ReadBasic.All" in assert_graph_error(refused, 403, "Authorization_RequestDenied")["message"]
    tenant.delete_device(oid)
    async with client(simulator) as http:
        gone = await http.get(f"/directory/deviceLocalCredentials/{device_id}")
    assert_graph_error(gone, 404, "Request_ResourceNotFound")


def test_set_laps_takes_an_index_an_object_id_or_a_device_id(small_tenant) -> None:
    a, b, c = small_tenant.object_ids()[:3]
    small_tenant.set_laps(small_tenant.device_index(a))
    small_tenant.set_laps(b)
    small_tenant.set_laps(small_tenant.device_json(c)["deviceId"])
    assert [small_tenant.laps_present(small_tenant.device_index(k)) for k in (a, b, c)] == [True, True, True]
    small_tenant.set_laps(b, False)
    assert not small_tenant.laps_present(small_tenant.device_index(b))
    assert not small_tenant.laps_present(len(small_tenant.devices) - 1)  # the default: no credential


async def test_conditional_access_policies_are_none_by_default_and_seedable(simulator: RunningSimulator) -> None:
    reader = {"Authorization": f"Bearer {make_token(['Policy.Read.All'])}"}
    async with client(simulator, **reader) as http:
        empty = (await http.get("/identity/conditionalAccess/policies")).json()
        simulator.tenant.seed_tag_rules(attribute=9)
        seeded = (await http.get("/identity/conditionalAccess/policies", params={"$select": "displayName,conditions"})).json()
        bad = await http.get("/identity/conditionalAccess/policies", params={"$select": "nope"})
    assert empty["value"] == [] and empty["@odata.context"].endswith("$metadata#identity/conditionalAccess/policies")
    filters = {p["displayName"]: p["conditions"]["devices"]["deviceFilter"] for p in seeded["value"]}
    assert filters["Kiosks: require compliant device"] == {"mode": "include", "rule": 'device.extensionAttribute9 -eq "kiosk"'}
    assert all(set(p) == {"id", "displayName", "conditions"} for p in seeded["value"])
    assert_graph_error(bad, 400)
    async with client(simulator, Authorization=f"Bearer {make_token(['Group.Read.All'])}") as http:
        refused = await http.get("/identity/conditionalAccess/policies")
    assert "Policy.Read.All" in assert_graph_error(refused, 403, "Authorization_RequestDenied")["message"]


async def test_groups_filtered_to_dynamic_membership(simulator: RunningSimulator) -> None:
    simulator.tenant.seed_tag_rules()
    reader = {"Authorization": f"Bearer {make_token(['Group.Read.All'])}"}
    dynamic = {"$filter": "groupTypes/any(c:c eq 'DynamicMembership')", "$select": "id,displayName,membershipRule"}
    async with client(simulator, **reader) as http:
        every = (await http.get("/groups")).json()["value"]
        only = (await http.get("/groups", params=dynamic)).json()["value"]
        unsupported = await http.get("/groups", params={"$filter": "displayName eq 'x'"})
    assert len(every) == len(simulator.tenant.groups) and any(g["membershipRule"] is None for g in every)
    assert {g["displayName"] for g in only} == {"Kiosk devices", "Windows devices"}
    assert all(set(g) == {"id", "displayName", "membershipRule"} for g in only)
    assert_graph_error(unsupported, 400, "Request_UnsupportedQuery")
    async with client(simulator, Authorization=f"Bearer {make_token(['GroupMember.Read.All'])}") as http:
        refused = await http.get("/groups", params=dynamic)
    assert "Group.Read.All" in assert_graph_error(refused, 403, "Authorization_RequestDenied")["message"]


async def test_non_windows_disable_is_refused_inside_batch_and_delete_works(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    mobile, other = tenant.truth.ids_with("non_windows", without=("disabled",))[:2]
    requests = [
        {"id": "d", "method": "PATCH", "url": f"/devices/{mobile}", "headers": JSON, "body": {"accountEnabled": False}},
        {"id": "t", "method": "PATCH", "url": f"/devices/{mobile}", "headers": JSON,
         "body": {"extensionAttributes": {"extensionAttribute15": "tagged"}}},
        {"id": "x", "method": "DELETE", "url": f"/devices/{other}"},
    ]  # fmt: skip
    async with client(simulator) as http:
        reply = (await http.post("/$batch", json={"requests": requests})).json()
    answers = {r["id"]: r for r in reply["responses"]}
    assert answers["d"]["status"] == 400 and answers["d"]["body"]["error"]["code"] == "Request_BadRequest"
    assert "only on windows devices" in answers["d"]["body"]["error"]["message"]
    assert answers["t"]["status"] == 204 and answers["x"]["status"] == 204
    assert tenant.device_json(mobile)["accountEnabled"] is True  # type: ignore[index]
    assert tenant.device_json(other) is None
