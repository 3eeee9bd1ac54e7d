"""The generated fleet and its ground truth: deterministic, coherent, and what the issue-3 rules say.

`oracle_class` below is an independent, deliberately plain reading of the classification rules over the
device JSON; the truth comes from the generator's recipes. Agreement on every device of several fleets
shows the recipes build what they claim.
"""

from __future__ import annotations

import base64
import fnmatch
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import tags
from shared.simulator import CLASSES, Tenant
from shared.simulator.fleet import EDGE_CASES

NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def registered(device: dict[str, Any]) -> bool:
    return any(base64.b64decode(a["key"]).decode("utf-16-le").startswith("X509:") for a in device["alternativeSecurityIds"])


def janitor_tag(device: dict[str, Any]) -> tags.Tag | None:
    return tags.parse(device["extensionAttributes"]["extensionAttribute15"])


def oracle_class(device: dict[str, Any], protected_ids: set[str], newest: dict[tuple[str, str], datetime], now: datetime) -> str:
    name, trust = device["displayName"], device["trustType"]
    signin, reg = ts(device["approximateLastSignInDateTime"]), ts(device["registrationDateTime"])
    if (
        any(p.startswith("[ZTDID]") for p in device["physicalIds"])
        or fnmatch.fnmatchcase(name, "KIOSK-*")
        or device["id"] in protected_ids
    ):
        return "protected"
    if trust == "ServerAd" and not registered(device):
        return "pending"
    tag = janitor_tag(device)
    if not device["accountEnabled"] and tag and tag.action == "disabled" and now - tag.at >= 30 * DAY:
        return "expired_disabled"
    latest = newest.get((name.lower(), trust))
    if signin is not None and latest is not None and latest > signin:
        return "duplicate"
    if device["accountEnabled"] and signin is not None and now - signin > 90 * DAY:
        return "stale"
    if signin is None and reg is not None and now - reg > 90 * DAY:
        return "no_signin_record"
    if (
        device["accountEnabled"]
        and trust == "AzureAd"
        and device["operatingSystem"] == "Windows"
        and device["isManaged"] is not True
    ):
        return "unmanaged"
    return "healthy"


def oracle(tenant: Tenant) -> dict[str, str]:
    group = tenant.group_index.get(tenant.protected_group_id)
    assert group is not None
    protected = {tenant.devices.object_id(i) for i in tenant.group_index.transitive_devices(group)}
    devices = [tenant.device_json(oid) for oid in tenant.object_ids()]
    newest: dict[tuple[str, str], datetime] = {}
    for d in devices:
        assert d is not None
        signin = ts(d["approximateLastSignInDateTime"])
        key = (d["displayName"].lower(), d["trustType"])
        if signin is not None and (key not in newest or signin > newest[key]):
            newest[key] = signin
    return {d["id"]: oracle_class(d, protected, newest, tenant.now) for d in devices if d is not None}


@pytest.mark.parametrize(
    ("devices", "seed", "profile"), [(3000, 7, "mixed"), (1500, 11, "stale20"), (600, 3, "clean"), (60, 5, "mixed")]
)
def test_truth_matches_an_independent_reading_of_the_rules(devices: int, seed: int, profile: str) -> None:
    tenant = Tenant.generate(devices=devices, seed=seed, now=NOW, profile=profile)
    expected = oracle(tenant)
    mismatches = [
        (oid, tenant.truth.archetype(oid), tenant.truth.expected_class(oid), cls)
        for oid, cls in expected.items()
        if tenant.truth.expected_class(oid) != cls
    ]
    assert not mismatches, mismatches[:5]
    counts = tenant.truth.class_counts()
    assert list(counts) == list(CLASSES) and sum(counts.values()) == devices == tenant.device_count
    assert counts == {c: sum(1 for v in expected.values() if v == c) for c in CLASSES}
    for cls in CLASSES:
        assert sorted(tenant.truth.ids_of(cls)) == sorted(oid for oid, c in expected.items() if c == cls)


def test_every_class_and_edge_case_is_present_in_a_small_mixed_fleet(shared_small_tenant: Tenant) -> None:
    counts = shared_small_tenant.truth.class_counts()
    assert all(counts[c] >= 2 for c in CLASSES), counts
    archetypes = Counter(shared_small_tenant.truth.archetype(oid) for oid in shared_small_tenant.object_ids())
    assert all(archetypes[edge] == 1 for edge in EDGE_CASES), archetypes


def test_flags_agree_with_the_device_json_and_side_records() -> None:
    tenant = Tenant.generate(devices=2000, seed=9, now=NOW)
    group = tenant.group_index.get(tenant.protected_group_id)
    assert group is not None
    protected = {tenant.devices.object_id(i) for i in tenant.group_index.transitive_devices(group)}
    for oid in tenant.object_ids():
        d = tenant.device_json(oid)
        assert d is not None
        flags = tenant.truth.flags(oid)
        signin = ts(d["approximateLastSignInDateTime"])
        index = tenant.devices.find(oid)
        assert index is not None
        intune = tenant.intune_record(index)
        tag = janitor_tag(d)
        assert ("autopilot" in flags) == any(p.startswith("[ZTDID]") for p in d["physicalIds"])
        assert ("hybrid" in flags) == (d["trustType"] == "ServerAd")
        assert ("windows" in flags) == (d["operatingSystem"] == "Windows") != ("non_windows" in flags)
        assert ("signin_blank" in flags) == (signin is None)
        assert ("signin_old" in flags) == (signin is not None and NOW - signin > 90 * DAY)
        assert ("disabled" in flags) == (not d["accountEnabled"])
        assert ("disabled_by_janitor" in flags) == (not d["accountEnabled"] and tag is not None and tag.action == "disabled")
        assert ("tagged_by_janitor" in flags) == (tag is not None and tag.action == "tagged")
        assert ("not_managed" in flags) == (d["isManaged"] is not True)
        assert ("bitlocker" in flags) == bool(tenant.bitlocker_keys(index))
        assert ("intune" in flags) == (intune is not None)
        assert ("intune_recent" in flags) == (intune is not None and NOW - ts(intune["lastSyncDateTime"]) <= 30 * DAY)
        assert ("has_owner" in flags) == (tenant.owner_of(oid) is not None)
        assert ("protected_group" in flags) == (oid in protected)
        assert ("protected_name" in flags) == d["displayName"].startswith("KIOSK-")
        assert ("pending" in flags) == (d["trustType"] == "ServerAd" and not registered(d))
        if "pending" in flags:
            age = NOW - ts(d["onPremisesLastSyncDateTime"])
            assert ("pending_stuck" in flags) == (age > 14 * DAY)
            assert d["registrationDateTime"] is None and d["onPremisesSecurityIdentifier"].startswith("S-1-5-21-")
        if "hybrid" in flags:
            assert d["onPremisesSyncEnabled"] is True and tenant.owner_of(oid) is None


def test_timestamps_keep_clear_of_thresholds_except_edge_cases() -> None:
    tenant = Tenant.generate(devices=4000, seed=2, now=NOW)
    for oid in tenant.object_ids():
        d = tenant.device_json(oid)
        assert d is not None
        edge = "edge_case" in tenant.truth.flags(oid)
        signin, reg = ts(d["approximateLastSignInDateTime"]), ts(d["registrationDateTime"])
        if signin is not None and not edge:
            assert abs((NOW - signin) - 90 * DAY) >= 4 * DAY, (oid, signin)
            assert signin <= NOW
        if signin is None and reg is not None and not edge:
            assert abs((NOW - reg) - 90 * DAY) >= 4 * DAY
        if reg is not None and signin is not None:
            assert reg <= signin or edge
        tag = janitor_tag(d)
        if tag is not None and not edge:
            assert abs((NOW - tag.at) - 30 * DAY) >= 2 * DAY
        index = tenant.devices.find(oid)
        assert index is not None
        intune = tenant.intune_record(index)
        if intune is not None:
            assert abs((NOW - ts(intune["lastSyncDateTime"])) - 30 * DAY) >= DAY


def test_generation_is_deterministic_and_seeded() -> None:
    a = Tenant.generate(devices=500, seed=4, now=NOW)
    b = Tenant.generate(devices=500, seed=4, now=NOW)
    c = Tenant.generate(devices=500, seed=5, now=NOW)
    assert a.object_ids() == b.object_ids() and a.object_ids() != c.object_ids()
    assert [a.device_json(i) for i in a.object_ids()] == [b.device_json(i) for i in b.object_ids()]
    assert [u.user_principal_name for u in a.users] == [u.user_principal_name for u in b.users]
    assert a.protected_group_id == b.protected_group_id != c.protected_group_id


def test_names_are_unique_except_deliberate_duplicates() -> None:
    tenant = Tenant.generate(devices=5000, seed=8, now=NOW)
    by_name: defaultdict[str, list[str]] = defaultdict(list)
    for oid in tenant.object_ids():
        d = tenant.device_json(oid)
        assert d is not None
        by_name[d["displayName"].lower()].append(oid)
    groups = [ids for ids in by_name.values() if len(ids) > 1]
    assert groups and all(len(ids) in (2, 3) for ids in groups)
    for ids in groups:
        flags = [tenant.truth.flags(oid) for oid in ids]
        assert sum("duplicate_newer" in f for f in flags) == 1
        assert sum("duplicate_older" in f for f in flags) == len(ids) - 1
        trusts = {tenant.device_json(oid)["trustType"] for oid in ids}  # type: ignore[index]
        assert len(trusts) == 1
    assert len(tenant.truth.ids_with("duplicate_older")) == tenant.truth.class_counts()["duplicate"]


def test_profiles_shape_the_fleet() -> None:
    stale = Tenant.generate(devices=5000, seed=1, now=NOW, profile="stale20").truth.class_counts()
    assert 0.19 <= stale["stale"] / 5000 <= 0.21
    mixed = Tenant.generate(devices=5000, seed=1, now=NOW)
    destructive = mixed.truth.ids_with("windows", without=("hybrid",))
    cls = mixed.truth.expected_class
    candidates = [o for o in destructive if cls(o) in ("stale", "duplicate", "expired_disabled")]
    assert 0 < len(candidates) / 5000 < 0.025  # under the default blast-radius limits
    clean = Tenant.generate(devices=2000, seed=1, now=NOW, profile="clean").truth.class_counts()
    assert clean["healthy"] + clean["protected"] == 2000
    with pytest.raises(ValueError, match="unknown fleet profile"):
        Tenant.generate(devices=10, profile="chaos")


def test_users_near_their_device_quota() -> None:
    tenant = Tenant.generate(devices=3000, seed=6, now=NOW)
    quota = tenant.policy.user_device_quota
    counts = {u: len(tenant.devices_of_user(u)) for u in tenant.heavy_users}
    assert sorted(counts.values(), reverse=True)[:2] == [quota, quota - 1]
    others = Counter(u.id for oid in tenant.object_ids() if (u := tenant.owner_of(oid)) is not None)
    assert max(n for user, n in others.items() if user not in counts) < quota - 3
    at_quota = tenant.truth.ids_with("owner_at_quota")
    assert len(at_quota) == quota and {tenant.owner_of(o).id for o in at_quota} == {tenant.heavy_users[0]}  # type: ignore[union-attr]


def test_reference_policy_names_the_protections(shared_small_tenant: Tenant) -> None:
    policy = shared_small_tenant.reference_policy()
    assert policy["protect"] == {
        "autopilot": True,
        "name_patterns": ["KIOSK-*"],
        "groups": [shared_small_tenant.protected_group_id],
    }
    assert policy["stale"]["disable_after_days"] == 90 and policy["pending"]["stuck_after_days"] == 14
    assert policy["mode"] == "report"


def test_reference_policy_depends_on_the_seed_only() -> None:
    empty, full = Tenant.generate(devices=0, seed=3, now=NOW), Tenant.generate(devices=3000, seed=3, now=NOW)
    assert empty.reference_policy() == full.reference_policy()
    assert (empty.join_group_id, empty.tenant_id, empty.admin_upn) == (full.join_group_id, full.tenant_id, full.admin_upn)
    assert empty.device_count == 0 and sum(empty.truth.class_counts().values()) == 0
