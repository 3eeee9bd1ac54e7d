"""Bearer tokens are decoded (not verified) and their roles enforced per endpoint; anonymous may do all."""

from __future__ import annotations

import pytest

from simulator import RunningSimulator, make_token
from simulator.auth import PERMISSIONS, BadToken, caller_from
from tests.simulator.helpers import assert_graph_error, client


@pytest.mark.parametrize(
    ("roles", "method", "path", "missing"),
    [
        ([], "GET", "/devices", "Device.Read.All"),
        (["Device.Read.All"], "PATCH", "/devices/{oid}", "Device.ReadWrite.All"),
        (["Device.Read.All"], "GET", "/policies/deviceRegistrationPolicy", "Policy.Read.DeviceConfiguration"),
        (
            ["Device.Read.All"],
            "GET",
            "/informationProtection/bitlocker/recoveryKeys?$filter=deviceId eq 'x'",
            "BitlockerKey.ReadBasic.All",
        ),
        (
            ["Device.Read.All"],
            "GET",
            "/deviceManagement/managedDevices?$filter=azureADDeviceId eq 'x'",
            "DeviceManagementManagedDevices.Read.All",
        ),
        (["GroupMember.Read.All"], "POST", "/users/{user}/checkMemberGroups", "User.Read.All"),
        (["User.Read.All"], "POST", "/users/{user}/checkMemberGroups", "GroupMember.Read.All"),
        (["User.Read.All"], "POST", "/users/{user}/sendMail", "Mail.Send"),
        (["Device.Read.All"], "GET", "/groups/{group}/transitiveMembers/microsoft.graph.device", "GroupMember.Read.All"),
    ],
)
async def test_missing_permission_is_named(
    simulator: RunningSimulator, roles: list[str], method: str, path: str, missing: str
) -> None:
    tenant = simulator.tenant
    url = path.format(oid=tenant.object_ids()[0], user=tenant.users[3].id, group=tenant.protected_group_id)
    async with client(simulator, Authorization=f"Bearer {make_token(roles)}") as http:
        response = await http.request(method, url, json={"groupIds": [tenant.join_group_id]} if method == "POST" else None)
    error = assert_graph_error(response, 403, "Authorization_RequestDenied")
    assert missing in error["message"]
    assert tenant.write_attempts == []


async def test_granted_roles_pass(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    token = make_token(["Device.ReadWrite.All", "Directory.Read.All", "Policy.Read.DeviceConfiguration"])
    async with client(simulator, Authorization=f"Bearer {token}") as http:
        statuses = [
            (await http.get("/devices", params={"$top": "1"})).status_code,
            (await http.get("/policies/deviceRegistrationPolicy")).status_code,
            (
                await http.post(f"/users/{tenant.users[3].id}/checkMemberGroups", json={"groupIds": [tenant.join_group_id]})
            ).status_code,
            (
                await http.patch(
                    f"/devices/{tenant.truth.ids_with('windows', without=('hybrid',))[0]}",
                    json={"extensionAttributes": {"extensionAttribute1": "x"}},
                )
            ).status_code,
        ]
    assert statuses == [200, 200, 200, 204]
    assert tenant.writes[0].caller == "00000000-0000-0000-0000-00000000a11e"


@pytest.mark.parametrize("header", ["Basic abc", "Bearer not-a-jwt", "Bearer a.!!!.c"])
async def test_malformed_tokens_are_401(simulator: RunningSimulator, header: str) -> None:
    async with client(simulator, Authorization=header) as http:
        response = await http.get("/devices")
    assert_graph_error(response, 401, "InvalidAuthenticationToken")


def test_token_decoding() -> None:
    caller = caller_from(f"Bearer {make_token(['Mail.Send'], app_id='app-1')}")
    assert caller.app == "app-1" and caller.roles == {"Mail.Send"} and caller.app_only
    assert caller.missing("mail.send") is None and caller.missing("devices.read") == "Device.Read.All"
    assert caller_from(None).missing("devices.write") is None
    assert not caller_from(f"Bearer {make_token([], delegated=True)}").app_only
    with pytest.raises(BadToken):
        caller_from("Bearer x.y")
    assert all(isinstance(alternatives, tuple) for alternatives in PERMISSIONS.values())
