"""Fact gathering through the Graph port: which object, which user, and failures turned into notes."""

from __future__ import annotations

from shared.diagnosis import choose_device, diagnose_device, gather_facts, parse_dsregcmd
from shared.errors import GraphError
from shared.policy import Policy
from tests.diagnosis.fakes import NONE, NOW, FakeGraph, device, fixture, join_policy, user

HEALTHY_ID = "4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13"


def test_choose_device_prefers_the_reported_device_id_then_recent_enabled_objects() -> None:
    local = parse_dsregcmd(fixture("win11_entra_joined_healthy.txt"))
    reported = device("PC", device_id=HEALTHY_ID, signed_in_days_ago=90)
    recent = device("PC", signed_in_days_ago=1)
    disabled_recent = device("PC", signed_in_days_ago=0, enabled=False)
    assert choose_device([recent, reported], local) is reported
    assert choose_device([disabled_recent, recent, reported], None) is recent
    assert choose_device([], local) is None


async def test_the_local_device_id_finds_an_object_the_name_does_not() -> None:
    renamed = device("NEW-NAME", device_id=HEALTHY_ID)
    graph = FakeGraph([renamed])
    facts = await gather_facts(
        graph, "DESKTOP-7QK2M4L", dsregcmd_text=fixture("win11_entra_joined_healthy.txt"), user=None, policy=Policy(), now=NOW
    )
    assert facts.device is renamed and facts.candidates == [renamed]


async def test_user_precedence_named_then_owner_then_dsregcmd_upn() -> None:
    ana, adele, owner = user("ana@contoso.com"), user("adele.vance@contoso.com"), user("owner@contoso.com")
    dev = device("DESKTOP-7QK2M4L", device_id=HEALTHY_ID)
    graph = FakeGraph([dev], users=[ana, adele, owner], owners={dev.id: [owner]})
    local = fixture("win11_entra_joined_healthy.txt")
    named = await gather_facts(graph, dev.id, dsregcmd_text=local, user="ana@contoso.com", policy=Policy(), now=NOW)
    assert named.user == ana and named.scope is not None and named.scope.user_id == ana.id
    by_owner = await gather_facts(graph, dev.id, dsregcmd_text=local, user=None, policy=Policy(), now=NOW)
    assert by_owner.user == owner
    by_upn = await gather_facts(
        graph,
        "DESKTOP-NEW",
        dsregcmd_text=local.replace(HEALTHY_ID, "0" * 8 + HEALTHY_ID[8:]),
        user=None,
        policy=Policy(),
        now=NOW,
    )
    assert by_upn.device is None and by_upn.user == adele  # from "Executing Account Name"
    unknown = await gather_facts(graph, dev.id, dsregcmd_text=None, user="ghost@contoso.com", policy=Policy(), now=NOW)
    assert unknown.user is None and unknown.user_ref == "ghost@contoso.com"
    assert "user 'ghost@contoso.com' was not found in the tenant" in unknown.notes


async def test_quota_devices_are_read_only_when_the_quota_is_reached() -> None:
    ana = user()
    mine = [device(f"PC-{i}", signed_in_days_ago=200) for i in range(3)]
    graph = FakeGraph([], users=[ana], policy=join_policy(NONE, quota=3), user_devices={ana.id: mine})
    facts = await gather_facts(graph, "DESKTOP-NEW", dsregcmd_text=None, user=ana.id, policy=Policy(), now=NOW)
    assert facts.scope.quota_reached and facts.user_devices == mine
    graph.policy = join_policy(NONE, quota=10)
    facts = await gather_facts(graph, "DESKTOP-NEW", dsregcmd_text=None, user=ana.id, policy=Policy(), now=NOW)
    assert not facts.scope.quota_reached and facts.user_devices == []


class FlakyGraph(FakeGraph):
    async def managed_device_last_sync(self, device_id: str):
        raise GraphError("Intune read refused", status=403, code="Authorization_RequestDenied")

    async def device_registration_policy(self):
        raise GraphError("policy read refused", status=403)


async def test_unreadable_facts_become_notes_not_failures() -> None:
    ana = user()
    dev = device("DESKTOP-7QK2M4L", device_id=HEALTHY_ID)
    d = await diagnose_device(
        FlakyGraph([dev], users=[ana]), dev.id, dsregcmd_text="garbage", user=ana.id, policy=Policy(), now=NOW, tenant_id="x"
    )
    details = [e.detail for e in d.evidence]
    assert any(t.startswith("the attached dsregcmd output could not be read") for t in details)
    assert any("Intune record not read" in t for t in details)
    assert any(t.startswith("join scope and quota could not be read") for t in details)
    assert d.stage == "healthy" and d.confidence == "likely"


async def test_tenant_id_defaults_to_the_setting() -> None:
    dev = device("DESKTOP-FAB0042", device_id="c5e7a9b1-3d5f-4a7c-9e1b-3d5f7a9c1e3b")
    local = fixture("win11_mismatched_tenant.txt")
    d = await diagnose_device(
        FakeGraph([dev]),
        dev.id,
        dsregcmd_text=local,
        user=None,
        policy=Policy(),
        now=NOW,
        env={"AZURE_TENANT_ID": "3f7c2a91-5d4e-4b8a-9c1f-2e6d8b0a4c57"},
    )
    assert d.stage == 3 and "another tenant" in d.summary
    unset = await diagnose_device(FakeGraph([dev]), dev.id, dsregcmd_text=local, user=None, policy=Policy(), now=NOW, env={})
    assert unset.stage == "healthy"  # without a configured tenant id there is nothing to compare against


async def test_nil_guid_reference_means_no_object_and_uses_the_devices_own_name() -> None:
    pc = device("LT-0977", trust="ServerAd", registered=False)
    facts = await gather_facts(
        FakeGraph([pc]),
        "00000000-0000-0000-0000-000000000000",
        dsregcmd_text=fixture("win10_hybrid_discovery_failed.txt"),
        user=None,
        policy=Policy(),
        now=NOW,
    )
    assert facts.device_ref == "LT-0977" and facts.device is pc  # "Device Name : LT-0977.corp.contoso.com"
    bare = await gather_facts(
        FakeGraph([pc]), "00000000-0000-0000-0000-000000000000", dsregcmd_text=None, user=None, policy=Policy(), now=NOW
    )
    assert bare.device_ref == "" and bare.device is None
