"""Single devices over HTTP: by id and by deviceId; PATCH rules; DELETE; registeredOwners; the write log."""

from __future__ import annotations

from simulator import RunningSimulator, Tenant, make_token
from tests.simulator.helpers import assert_graph_error, client

READER = make_token(["Device.Read.All"])
WRITER = make_token(["Device.ReadWrite.All"])


def first(tenant: Tenant, *flags: str, without: tuple[str, ...] = ()) -> str:
    ids = tenant.truth.ids_with(*flags, without=without)
    assert ids, flags
    return ids[0]


async def test_get_by_id_and_by_device_id(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    oid = tenant.object_ids()[7]
    device = tenant.device_json(oid)
    assert device is not None
    async with client(simulator) as http:
        by_id = (await http.get(f"/devices/{oid}", params={"$select": "id,deviceId,extensionAttributes"})).json()
        by_device_id = await http.get(f"/devices(deviceId='{device['deviceId']}')")
        upper = await http.get(f"/devices/{oid.upper()}")
    assert by_id["@odata.context"].endswith("$metadata#devices/$entity")
    assert by_id["deviceId"] == device["deviceId"] and by_id["extensionAttributes"] == device["extensionAttributes"]
    assert by_device_id.status_code == 200 and by_device_id.json()["id"] == oid
    assert upper.status_code == 200


async def test_missing_devices_are_404_with_graphs_shape(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    real = tenant.object_ids()[0]
    forged = real[:9] + ("0000" if real[9:13] != "0000" else "1111") + real[13:]  # right index, wrong GUID
    async with client(simulator) as http:
        for path in (f"/devices/{forged}", "/devices/not-a-guid", "/devices(deviceId='00000000-0000-0000-0000-000000000000')"):
            response = await http.get(path, headers={"client-request-id": "trace-me"})
            error = assert_graph_error(response, 404, "Request_ResourceNotFound")
            assert response.headers["client-request-id"] == "trace-me" == error["innerError"]["client-request-id"]


async def test_patch_disables_and_merges_extension_attributes(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    oid = first(tenant, "windows", without=("hybrid", "disabled", "foreign_tag", "tagged_by_janitor"))
    async with client(simulator, Authorization=f"Bearer {WRITER}") as http:
        one = await http.patch(f"/devices/{oid}", json={"accountEnabled": False})
        two = await http.patch(
            f"/devices/{oid}", json={"extensionAttributes": {"extensionAttribute15": "tag", "extensionAttribute3": "x"}}
        )
        three = await http.patch(f"/devices/{oid}", json={"extensionAttributes": {"extensionAttribute3": None}})
    assert one.status_code == two.status_code == three.status_code == 204 and one.content == b""
    device = tenant.device_json(oid)
    assert device is not None and device["accountEnabled"] is False
    assert device["extensionAttributes"]["extensionAttribute15"] == "tag"
    assert device["extensionAttributes"]["extensionAttribute3"] is None
    assert [w.method for w in tenant.writes] == ["PATCH"] * 3 and {w.object_id for w in tenant.writes} == {oid}
    assert tenant.writes[0].body == {"accountEnabled": False} and tenant.writes[0].request_id == one.headers["request-id"]
    assert tenant.writes[0].caller != "anonymous"
    assert simulator.stats.writes == 3


async def test_app_only_callers_cannot_disable_non_windows_devices(simulator: RunningSimulator) -> None:
    """Graph answers 400 Request_BadRequest, not 403 (microsoft-graph-docs issues 15707, 16641), to every
    permission; extensionAttributes may still be written, and the device may be deleted."""
    tenant = simulator.tenant
    oid, other = tenant.truth.ids_with("non_windows", without=("disabled",))[:2]
    writer = {"Authorization": f"Bearer {WRITER}"}
    async with client(simulator) as http:  # anonymous counts as app-only, like the project's identity
        refused = await http.patch(f"/devices/{oid}", json={"accountEnabled": False})
        with_role = await http.patch(f"/devices/{oid}", json={"accountEnabled": False}, headers=writer)
        mixed = await http.patch(
            f"/devices/{oid}", json={"accountEnabled": False, "extensionAttributes": {"extensionAttribute15": "x"}}
        )
        tagged = await http.patch(f"/devices/{oid}", json={"extensionAttributes": {"extensionAttribute15": "tagged"}})
        delegated = await http.patch(
            f"/devices/{oid}",
            json={"accountEnabled": False},
            headers={"Authorization": f"Bearer {make_token([], delegated=True)}"},
        )
        deleted = await http.delete(f"/devices/{other}", headers=writer)
    for response in (refused, with_role, mixed):
        error = assert_graph_error(response, 400, "Request_BadRequest")
        assert error["message"] == "Properties other than ExtendedAttribute1..15 can be modified only on windows devices."
    assert tagged.status_code == 204 and delegated.status_code == 204 and deleted.status_code == 204
    assert [(w.method, w.status, w.error_code) for w in tenant.write_attempts] == [
        ("PATCH", 400, "Request_BadRequest"),
        ("PATCH", 400, "Request_BadRequest"),
        ("PATCH", 400, "Request_BadRequest"),
        ("PATCH", 204, None),
        ("PATCH", 204, None),
        ("DELETE", 204, None),
    ]
    assert tenant.device_json(other) is None


async def test_synced_devices_refuse_account_enabled(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    oid = first(tenant, "hybrid", without=("pending", "disabled"))
    async with client(simulator) as http:
        response = await http.patch(f"/devices/{oid}", json={"accountEnabled": False})
    assert "on-premises mastered" in assert_graph_error(response, 400)["message"]
    assert tenant.device_json(oid)["accountEnabled"] is True  # type: ignore[index]
    assert not tenant.writes and tenant.write_attempts[0].status == 400


async def test_bad_patch_bodies(simulator: RunningSimulator) -> None:
    oid = simulator.tenant.object_ids()[0]
    async with client(simulator) as http:
        for body, words in [
            ({"displayName": "x"}, "only accountEnabled and extensionAttributes"),
            ({"accountEnabled": "no"}, "true or false"),
            ({"extensionAttributes": {"extensionAttribute16": "x"}}, "extensionAttribute1..15"),
            ({"extensionAttributes": {"extensionAttribute1": 5}}, "string"),
            ({}, "non-empty"),
        ]:
            assert words in assert_graph_error(await http.patch(f"/devices/{oid}", json=body), 400)["message"]
        broken = await http.patch(f"/devices/{oid}", content=b"{not json", headers={"Content-Type": "application/json"})
    assert "JSON" in assert_graph_error(broken, 400)["message"]
    assert simulator.tenant.writes == []


async def test_delete_then_404_and_device_id_addressing(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    a, b = tenant.object_ids()[10:12]
    b_device_id = tenant.device_json(b)["deviceId"]  # type: ignore[index]
    async with client(simulator) as http:
        assert (await http.delete(f"/devices/{a}")).status_code == 204
        assert_graph_error(await http.get(f"/devices/{a}"), 404)
        assert_graph_error(await http.delete(f"/devices/{a}"), 404)
        patched = await http.patch(
            f"/devices(deviceId='{b_device_id}')", json={"extensionAttributes": {"extensionAttribute1": "x"}}
        )
        deleted = await http.delete(f"/devices(deviceId='{b_device_id}')")
    assert patched.status_code == deleted.status_code == 204
    assert tenant.device_json(a) is None and tenant.device_json(b) is None
    assert [(w.method, w.object_id, w.status) for w in tenant.write_attempts] == [
        ("DELETE", a, 204),
        ("DELETE", a, 404),
        ("PATCH", b, 204),
        ("DELETE", b, 204),
    ]
    assert tenant.truth.expected_class(a) in {
        "healthy",
        "protected",
        "stale",
        "pending",
        "duplicate",
        "unmanaged",
        "no_signin_record",
        "expired_disabled",
    }  # truth remembers deleted devices


async def test_registered_owners_need_user_read_for_details(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    oid = first(tenant, "has_owner")
    owner = tenant.owner_of(oid)
    assert owner is not None
    hybrid = first(tenant, "hybrid")
    async with client(simulator) as http:
        full = (await http.get(f"/devices/{oid}/registeredOwners")).json()["value"]
        ids_only = (await http.get(f"/devices/{oid}/registeredOwners", headers={"Authorization": f"Bearer {READER}"})).json()[
            "value"
        ]
        none = (await http.get(f"/devices/{hybrid}/registeredOwners")).json()["value"]
    assert full == [{"@odata.type": "#microsoft.graph.user", **owner.to_graph()}]
    assert full[0]["mail"] == owner.mail and full[0]["userPrincipalName"] == owner.user_principal_name
    assert ids_only == [{"@odata.type": "#microsoft.graph.user", "id": owner.id}]
    assert none == []


async def test_request_ids_on_every_response(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        responses = [
            await http.get("/devices", params={"$top": "1"}),
            await http.get("/users/nobody@nowhere"),
            await http.get("/devices", headers={"client-request-id": "abc"}),
        ]
    ids = [r.headers["request-id"] for r in responses]
    assert len(set(ids)) == 3 and all(len(i) == 36 for i in ids)
    assert responses[2].headers["client-request-id"] == "abc"
