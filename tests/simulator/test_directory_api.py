"""Users, groups, the registration policy, BitLocker, Intune, mail and the organization, over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from simulator import RunningSimulator
from tests.simulator.helpers import EVENTUAL, all_pages, assert_graph_error, client


async def test_users_by_id_and_upn(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    user = tenant.users[5]
    async with client(simulator) as http:
        by_id = (await http.get(f"/users/{user.id}")).json()
        by_upn = (await http.get(f"/users/{user.user_principal_name.upper()}")).json()
        selected = (await http.get(f"/users/{user.id}", params={"$select": "id,mail,accountEnabled"})).json()
        missing = await http.get("/users/ghost@contoso.example")
    assert by_id["userPrincipalName"] == by_upn["userPrincipalName"] == user.user_principal_name
    assert by_id["mail"] == user.mail and "accountEnabled" not in by_id
    assert {k: v for k, v in selected.items() if not k.startswith("@")} == {
        "id": user.id,
        "mail": user.mail,
        "accountEnabled": user.account_enabled,
    }
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


async def test_registered_devices_of_a_heavy_user(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    heavy = tenant.heavy_users[0]
    async with client(simulator) as http:
        devices = (await http.get(f"/users/{heavy}/registeredDevices", params={"$select": "id,trustType"})).json()["value"]
    assert len(devices) == tenant.policy.user_device_quota
    assert sorted(d["id"] for d in devices) == sorted(tenant.devices_of_user(heavy))
    assert all(d["@odata.type"] == "#microsoft.graph.device" and d["trustType"] != "ServerAd" for d in devices)


async def test_check_member_groups_is_transitive(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    join = tenant.group_index.get(tenant.join_group_id)
    assert join is not None
    nested_only = [u for g in tenant.group_index.closure(join) if g is not join for u in g.users if u not in join.users]
    direct, outsider = join.users[0], 2  # users[2] is in the policy's users list, in no join group
    assert nested_only
    ids = [tenant.join_group_id, tenant.protected_group_id]
    async with client(simulator) as http:
        answers = {}
        for index in (direct, nested_only[0], outsider):
            response = await http.post(f"/users/{tenant.users[index].id}/checkMemberGroups", json={"groupIds": ids})
            answers[index] = response.json()["value"]
        too_many = await http.post(f"/users/{tenant.users[direct].id}/checkMemberGroups", json={"groupIds": ids * 11})
        empty = await http.post(f"/users/{tenant.users[direct].id}/checkMemberGroups", json={"groupIds": []})
    assert answers == {direct: [tenant.join_group_id], nested_only[0]: [tenant.join_group_id], outsider: []}
    assert "at most 20" in assert_graph_error(too_many, 400)["message"]
    assert_graph_error(empty, 400)


@pytest.mark.parametrize("mode", ["all", "selected", "none"])
async def test_device_registration_policy_modes(simulator: RunningSimulator, mode: str) -> None:
    tenant = simulator.tenant
    tenant.set_join_policy(
        mode,
        users=[tenant.users[2].id] if mode == "selected" else (),  # type: ignore[arg-type]
        groups=[tenant.join_group_id] if mode == "selected" else (),
        quota=20,
    )
    async with client(simulator) as http:
        policy = (await http.get("/policies/deviceRegistrationPolicy")).json()
    allowed = policy["azureADJoin"]["allowedToJoin"]
    assert policy["userDeviceQuota"] == 20
    assert (
        allowed["@odata.type"]
        == {
            "all": "#microsoft.graph.allDeviceRegistrationMembership",
            "selected": "#microsoft.graph.enumeratedDeviceRegistrationMembership",
            "none": "#microsoft.graph.noDeviceRegistrationMembership",
        }[mode]
    )
    if mode == "selected":
        assert allowed["users"] == [tenant.users[2].id] and allowed["groups"] == [tenant.join_group_id]


async def test_default_policy_selects_the_join_group(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        policy = (await http.get("/policies/deviceRegistrationPolicy")).json()
    assert policy["azureADJoin"]["allowedToJoin"]["groups"] == [simulator.tenant.join_group_id]
    assert policy["userDeviceQuota"] == 50


async def test_protected_group_transitive_device_members(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    protected = set(tenant.truth.ids_with("protected_group"))
    nested = set(tenant.truth.ids_with("protected_group_nested"))
    assert nested and nested < protected
    path = f"/groups/{tenant.protected_group_id}/transitiveMembers/microsoft.graph.device"
    async with client(simulator) as http:
        members, pages = await all_pages(http, path, {"$select": "id", "$top": "1"})
        direct, _ = await all_pages(
            http, f"/groups/{tenant.protected_group_id}/members/microsoft.graph.device", {"$select": "id"}
        )
        counted = (await http.get(path, params={"$count": "true"}, headers=EVENTUAL)).json()
        lab, _ = await all_pages(
            http, f"/groups/{tenant.lab_group_id}/transitiveMembers/microsoft.graph.device", {"$select": "id"}
        )
        group = (await http.get(f"/groups/{tenant.protected_group_id}")).json()
        missing = await http.get("/groups/00000000-0000-4000-8000-000000000000/transitiveMembers")
    assert len(pages) > 1 and all(m == {"@odata.type": "#microsoft.graph.device", "id": m["id"]} for m in members)
    assert {m["id"] for m in members} == protected
    assert {m["id"] for m in direct} == protected - nested
    assert counted["@odata.count"] == len(protected)
    assert {m["id"] for m in lab} == set(tenant.truth.ids_with("lab_group")) and not protected & {m["id"] for m in lab}
    assert group["displayName"] == "Protected Devices"
    assert_graph_error(missing, 404)


async def test_bitlocker_keys_and_intune_records(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    with_keys = tenant.device_json(tenant.truth.ids_with("bitlocker")[0])
    without = tenant.device_json(tenant.truth.ids_with("windows", without=("bitlocker",))[0])
    recent = tenant.device_json(tenant.truth.ids_with("intune_recent")[0])
    old = tenant.device_json(tenant.truth.ids_with("intune", without=("intune_recent",))[0])
    unenrolled = tenant.device_json(tenant.truth.ids_with("windows", without=("intune",))[0])
    assert with_keys and without and recent and old and unenrolled
    async with client(simulator) as http:

        async def keys(device_id: str) -> list[dict]:
            response = await http.get(
                "/informationProtection/bitlocker/recoveryKeys", params={"$filter": f"deviceId eq '{device_id}'"}
            )
            return response.json()["value"]

        async def intune(device_id: str) -> list[dict]:
            response = await http.get("/deviceManagement/managedDevices", params={"$filter": f"azureADDeviceId eq '{device_id}'"})
            return response.json()["value"]

        assert {k["deviceId"] for k in await keys(with_keys["deviceId"])} == {with_keys["deviceId"]}
        assert await keys(without["deviceId"]) == []
        assert (await intune(unenrolled["deviceId"])) == []
        recent_sync = (await intune(recent["deviceId"]))[0]["lastSyncDateTime"]
        old_sync = (await intune(old["deviceId"]))[0]["lastSyncDateTime"]
        unfiltered = await http.get("/deviceManagement/managedDevices")
    now = tenant.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (tenant.now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ") <= recent_sync <= now
    assert old_sync < (tenant.now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "azureADDeviceId eq" in assert_graph_error(unfiltered, 400)["message"]


async def test_send_mail_lands_in_the_outbox(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    message = {
        "message": {
            "subject": "Device disabled",
            "body": {"contentType": "HTML", "content": "<p>hello</p>"},
            "toRecipients": [{"emailAddress": {"address": "a@contoso.example"}}],
            "ccRecipients": [{"emailAddress": {"address": tenant.admin_upn}}],
        },
        "saveToSentItems": False,
    }
    no_mailbox = next(u for u in tenant.users if u.mail is None)
    async with client(simulator) as http:
        sent = await http.post(f"/users/{tenant.sender_upn}/sendMail", json=message)
        nobody = await http.post(f"/users/{tenant.sender_upn}/sendMail", json={"message": {"subject": "x"}})
        unknown = await http.post("/users/ghost@contoso.example/sendMail", json=message)
        mailbox = await http.post(f"/users/{no_mailbox.id}/sendMail", json=message)
    assert sent.status_code == 202 and sent.content == b""
    assert_graph_error(nobody, 400, "ErrorInvalidRecipients")
    assert_graph_error(unknown, 404)
    assert_graph_error(mailbox, 404, "MailboxNotEnabledForRESTAPI")
    assert len(tenant.outbox) == 1
    mail = tenant.outbox[0]
    assert (mail["from"], mail["to"], mail["cc"], mail["subject"], mail["body"], mail["content_type"]) == (
        tenant.sender_upn,
        ["a@contoso.example"],
        [tenant.admin_upn],
        "Device disabled",
        "<p>hello</p>",
        "HTML",
    )
    assert mail["request_id"] == sent.headers["request-id"]


async def test_organization(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        org = (await http.get("/organization")).json()["value"][0]
    assert org["id"] == simulator.tenant.tenant_id and org["verifiedDomains"][0]["name"] == "contoso.example"
