"""The generated fleet and its ground truth: deterministic, coherent, true to Graph, and read from docs/safety.md.

The truth comes from the "Expected outcomes" table (one row per population). `oracle_class` below is an
independent, deliberately plain reading of Microsoft's definitions over the device JSON (the same sources the
table cites, not the project's rules); agreement on every device of several fleets shows the recipes build
what their rows claim.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.device import Device as GraphDevice

from shared import tags
from simulator import CLASSES, Tenant
from simulator.fleet import EDGE_CASES
from simulator.truth import OUTCOMES, SAFETY_DOC, ExpectationsError, GroundTruth, load_expectations

NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SPECIAL_PROFILES = {"Printer", "SecureVM", "Shared", "IoT"}
GRAPH_PROFILE_TYPES = {"RegisteredDevice", *SPECIAL_PROFILES}
#: Classes Microsoft's guidance (or silence) leaves alone: no row of theirs may write.
HANDS_OFF = {"protected", "registration_unclear", "no_signin_record", "unmanaged", "healthy"}
#: Which outcomes a class may have at all (the table is checked against these).
WRITES_BY_CLASS = {
    "pending": {"deleted", "no write"},
    "reactivated": {"tag cleared"},
    "expired_disabled": {"deleted", "no write"},
    "duplicate": {"disabled+tagged", "tagged", "notified on-prem", "no write"},
    "stale": {"disabled+tagged", "tagged", "notified on-prem", "no write"},
}


def ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def key_texts(device: dict[str, Any]) -> list[str]:
    return [base64.b64decode(a["key"]).decode("utf-16-le") for a in device["alternativeSecurityIds"]]


def janitor_tag(device: dict[str, Any]) -> tags.Tag | None:
    return tags.parse(device["extensionAttributes"]["extensionAttribute15"])


def hardware(device: dict[str, Any]) -> str | None:
    """The [HWID] entry, else the [USER-HWID] entry, of physicalIds."""
    for prefix in ("[HWID]", "[USER-HWID]"):
        for entry in device["physicalIds"]:
            if entry.startswith(prefix):
                return entry
    return None


# --------------------------------------------------------------------------- an independent reading


def oracle_class(device: dict[str, Any], protected_ids: set[str], fleet: dict[str, list[dict[str, Any]]]) -> str:
    name, trust = device["displayName"], device["trustType"]
    signin, reg = ts(device["approximateLastSignInDateTime"]), ts(device["registrationDateTime"])
    if (
        any(p.startswith("[ZTDID]") for p in device["physicalIds"])
        or fnmatch.fnmatchcase(name, "KIOSK-*")
        or device["id"] in protected_ids
        or device["profileType"] in SPECIAL_PROFILES
    ):
        return "protected"
    keys = key_texts(device)
    if trust == "ServerAd" and device["onPremisesSyncEnabled"] is True and not keys:
        return "pending"
    if trust == "ServerAd" and keys and not any(k.startswith("X509:") for k in keys):
        return "registration_unclear"
    tag = janitor_tag(device)
    if tag and ((signin is not None and signin > tag.at) or (tag.action == "disabled" and device["accountEnabled"])):
        return "reactivated"
    if not device["accountEnabled"] and tag and tag.action == "disabled" and NOW - tag.at >= 30 * DAY:
        return "expired_disabled"
    if signin is not None and NOW - signin >= 30 * DAY and _has_newer_registration(device, signin, fleet):
        return "duplicate"
    if device["accountEnabled"] and signin is not None and NOW - signin > 90 * DAY:
        return "stale"
    if signin is None and reg is not None and NOW - reg > 90 * DAY:
        return "no_signin_record"
    if (
        device["accountEnabled"]
        and trust == "AzureAd"
        and device["operatingSystem"] == "Windows"
        and device["isManaged"] is not True
    ):
        return "unmanaged"
    return "healthy"


def _has_newer_registration(device: dict[str, Any], signin: datetime, fleet: dict[str, list[dict[str, Any]]]) -> bool:
    """Another enabled object of the same hardware and trust type registered after this one last signed in."""
    hw = hardware(device)
    return hw is not None and any(
        other["id"] != device["id"]
        and other["trustType"] == device["trustType"]
        and other["accountEnabled"]
        and (registered := ts(other["registrationDateTime"])) is not None
        and registered > signin
        for other in fleet[hw]
    )


def oracle(tenant: Tenant) -> dict[str, str]:
    group = tenant.group_index.get(tenant.protected_group_id)
    assert group is not None
    protected = {tenant.devices.object_id(i) for i in tenant.group_index.transitive_devices(group)}
    devices = [d for oid in tenant.object_ids() if (d := tenant.device_json(oid)) is not None]
    by_hardware: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in devices:
        if (hw := hardware(d)) is not None:
            by_hardware[hw].append(d)
    return {d["id"]: oracle_class(d, protected, by_hardware) for d in devices}


@pytest.mark.parametrize(
    ("devices", "seed", "profile"), [(3000, 7, "mixed"), (1500, 11, "stale20"), (600, 3, "clean"), (60, 5, "mixed")]
)
def test_truth_matches_an_independent_reading_of_microsofts_definitions(devices: int, seed: int, profile: str) -> None:
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


# --------------------------------------------------------------------------- the table itself


def test_every_row_is_a_population_of_a_200_device_fleet_and_every_device_has_a_row() -> None:
    tenant = Tenant.generate(devices=200, seed=13, now=NOW)
    seen = Counter(tenant.truth.archetype(oid) for oid in tenant.object_ids())
    rows = load_expectations()
    assert set(seen) <= set(rows)
    assert set(rows) - set(seen) == {"recreated_by_sync"}  # only an Entra Connect cycle makes those
    assert all(seen[p] == 1 for p in EDGE_CASES)
    assert all(n >= 2 for p, n in seen.items() if p not in EDGE_CASES), seen
    for oid in tenant.object_ids():
        row = rows[tenant.truth.archetype(oid)]
        assert (tenant.truth.expected_class(oid), tenant.truth.expected_outcome(oid)) == (row.cls, row.outcome)


def test_no_row_writes_where_the_sources_say_leave_it_alone() -> None:
    for row in load_expectations().values():
        assert row.outcome in OUTCOMES and row.source
        if row.cls in HANDS_OFF:
            assert row.outcome == "no write", row
        else:
            assert row.outcome in WRITES_BY_CLASS[row.cls], row


def test_the_new_populations_have_their_expected_rows() -> None:
    rows = load_expectations()
    assert rows["hostile_name.victim"].outcome == rows["hostile_name.impostor"].outcome == "no write"
    assert rows["shared_iphone"].outcome == rows["shared_win.older"].outcome == "no write"
    assert (rows["foreign_tag"].cls, rows["foreign_tag"].outcome) == ("stale", "no write")
    assert {rows[f"reactivated.{v}"].outcome for v in ("signed_in", "enabled", "disabled_again", "mobile")} == {"tag cleared"}
    assert rows["edge.pending_odd_key"].cls == rows["registration_unclear"].cls == "registration_unclear"
    assert rows["unsynced_hybrid"].outcome == rows["downlevel_hybrid"].outcome == "disabled+tagged"
    assert rows["janitor_expired.laps"].outcome == rows["intune_active"].outcome == "no write"
    assert rows["janitor_expired.laps"].note and "LAPS" in rows["janitor_expired.laps"].note


def _doc(
    tmp_path: Path, rows: str, header: str = "| population | what it is | expected class | enforce outcome | source |"
) -> Path:
    path = tmp_path / "safety.md"
    rules = "# Safety\n\n## Rules\n\n| a |\n| - |\n\n"
    path.write_text(f"{rules}## Expected outcomes\n\nprose\n\n{header}\n| --- | --- | --- | --- | --- |\n{rows}\n\n## Next\n")
    return path


def test_the_table_parser_reads_rows_and_names_what_is_wrong(tmp_path: Path) -> None:
    good = _doc(tmp_path, "| `a`, `b.c` | thing \\| other | `stale` | no write (blocked: x) | [Stale] |")
    rows = load_expectations(good)
    assert set(rows) == {"a", "b.c"} and rows["a"].outcome == "no write" and rows["a"].note == "blocked: x"
    assert rows["a"].what == "thing \\| other"
    bad = {
        "| `a` | thing | `stael` | no write | [Stale] |": "class '`stael`' is not one of",
        "| `a` | thing | `stale` | nothing | [Stale] |": "outcome 'nothing'",
        "| a | thing | `stale` | no write | [Stale] |": "in backticks",
        "| `a` | thing | `stale` | no write |  |": "cites its source",
        "| `a` | thing | `stale` | no write | [Stale] |\n| `a` | again | `stale` | no write | [Stale] |": "two rows",
    }
    for n, (text, message) in enumerate(bad.items()):
        folder = tmp_path / str(n)
        folder.mkdir()
        with pytest.raises(ExpectationsError, match=re.escape(message)):
            load_expectations(_doc(folder, text))
    with pytest.raises(ExpectationsError, match="columns"):
        columns = tmp_path / "columns"
        columns.mkdir()
        load_expectations(_doc(columns, "| `a` | b | `stale` | no write | s |", header="| population | class |"))
    missing = tmp_path / "nowhere" / "safety.md"
    with pytest.raises(ExpectationsError, match=r"missing.*repository checkout"):
        load_expectations(missing)
    (tmp_path / "nosection.md").write_text("# Safety\n")
    with pytest.raises(ExpectationsError, match="no '## Expected outcomes' section"):
        load_expectations(tmp_path / "nosection.md")


def test_a_population_without_a_row_is_an_error() -> None:
    truth = GroundTruth(lambda oid: None, str)
    with pytest.raises(ExpectationsError, match="'made_up' has no row"):
        truth.record("made_up", 0)
    assert SAFETY_DOC.name == "safety.md" and SAFETY_DOC.parent.name == "docs" and SAFETY_DOC.is_file()


# --------------------------------------------------------------------------- the fleet as generated


def test_every_class_and_edge_case_is_present_in_a_small_mixed_fleet(shared_small_tenant: Tenant) -> None:
    counts = shared_small_tenant.truth.class_counts()
    # `kept` comes from the audit log (an owner's keep link), never from the fleet as generated
    assert all(counts[c] >= 2 for c in CLASSES if c != "kept") and counts["kept"] == 0, counts
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
        raw_tag = d["extensionAttributes"]["extensionAttribute15"]
        hybrid = d["trustType"] == "ServerAd"
        keys = key_texts(d)
        assert ("autopilot" in flags) == any(p.startswith("[ZTDID]") for p in d["physicalIds"])
        assert ("hybrid" in flags) == hybrid
        assert ("windows" in flags) == (d["operatingSystem"] == "Windows") != ("non_windows" in flags)
        assert ("signin_blank" in flags) == (signin is None)
        assert ("signin_old" in flags) == (signin is not None and NOW - signin > 90 * DAY)
        assert ("disabled" in flags) == (not d["accountEnabled"])
        assert ("disabled_by_janitor" in flags) == (not d["accountEnabled"] and tag is not None and tag.action == "disabled")
        assert ("tagged_by_janitor" in flags) == (tag is not None and tag.action == "tagged")
        assert ("foreign_tag" in flags) == (bool(raw_tag) and tag is None)
        reactivated = tag is not None and (
            (signin is not None and signin > tag.at) or (tag.action == "disabled" and d["accountEnabled"])
        )
        assert ("reactivated" in flags) == reactivated
        assert ("not_managed" in flags) == (d["isManaged"] is not True)
        assert ("bitlocker" in flags) == bool(tenant.bitlocker_keys(index))
        assert ("laps" in flags) == tenant.laps_present(index)
        assert ("intune" in flags) == (intune is not None)
        assert ("intune_recent" in flags) == (intune is not None and NOW - ts(intune["lastSyncDateTime"]) <= 30 * DAY)
        assert ("has_owner" in flags) == (tenant.owner_of(oid) is not None)
        assert ("protected_group" in flags) == (oid in protected)
        assert ("protected_name" in flags) == d["displayName"].startswith("KIOSK-")
        assert ("special_profile" in flags) == (d["profileType"] in SPECIAL_PROFILES)
        assert ("pending" in flags) == (hybrid and d["onPremisesSyncEnabled"] is True and not keys)
        assert ("unclear_keys" in flags) == (hybrid and bool(keys) and not any(k.startswith("X509:") for k in keys))
        assert ("unsynced_hybrid" in flags) == (hybrid and d["onPremisesSyncEnabled"] is not True)
        assert ("downlevel_hybrid" in flags) == (hybrid and d["operatingSystemVersion"].startswith("6."))
        if "pending" in flags:
            age = NOW - ts(d["onPremisesLastSyncDateTime"])
            assert ("pending_stuck" in flags) == (age > 14 * DAY)
            assert d["registrationDateTime"] is None and d["onPremisesSecurityIdentifier"].startswith("S-1-5-21-")
        if hybrid:
            assert tenant.owner_of(oid) is None and d["onPremisesSecurityIdentifier"].startswith("S-1-5-21-")
        else:
            assert d["onPremisesSyncEnabled"] is None and d["onPremisesSecurityIdentifier"] is None


def test_the_populations_are_what_their_rows_say() -> None:
    tenant = Tenant.generate(devices=3000, seed=21, now=NOW)
    by_population: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for oid in tenant.object_ids():
        d = tenant.device_json(oid)
        assert d is not None
        by_population[tenant.truth.archetype(oid)].append(d)
    iphones = by_population["shared_iphone"]
    assert len(iphones) >= 3 and {d["displayName"] for d in iphones} == {"iPhone"}
    assert len({hardware(d) for d in iphones}) == len(iphones) and all(d["operatingSystem"] == "iOS" for d in iphones)
    special = by_population["special_profile"]
    assert {d["profileType"] for d in special} == SPECIAL_PROFILES
    assert any(NOW - ts(d["approximateLastSignInDateTime"]) > 90 * DAY for d in special)  # some of them stale
    unsynced = by_population["unsynced_hybrid"]
    assert {d["onPremisesSyncEnabled"] for d in unsynced} == {False, None}
    downlevel = by_population["downlevel_hybrid"]
    assert {d["operatingSystemVersion"].split(".")[1] for d in downlevel} <= {"1", "3"}
    assert all(d["operatingSystemVersion"].startswith("6.") and d["trustType"] == "ServerAd" for d in downlevel)
    for d in by_population["pending_new"] + by_population["pending_stuck"]:
        assert d["onPremisesSyncEnabled"] is True and d["alternativeSecurityIds"] == []
    for d in by_population["registration_unclear"] + by_population["edge.pending_odd_key"]:
        assert d["onPremisesSyncEnabled"] is True and all(k.startswith("RSA:") for k in key_texts(d))
    for d in by_population["foreign_tag"]:
        assert d["extensionAttributes"]["extensionAttribute15"] and janitor_tag(d) is None
    for population in ("janitor_expired.laps", "intune_active"):
        assert len(by_population[population]) >= 2


def test_shared_names_are_unrelated_hardware_and_duplicates_share_it() -> None:
    tenant = Tenant.generate(devices=5000, seed=8, now=NOW)
    by_name: defaultdict[str, list[str]] = defaultdict(list)
    for oid in tenant.object_ids():
        d = tenant.device_json(oid)
        assert d is not None
        by_name[d["displayName"].lower()].append(oid)
    named_alike = {"shared_name", "hostile_name", "duplicate_newer", "duplicate_older"}
    for ids in (ids for ids in by_name.values() if len(ids) > 1):
        populations = {tenant.truth.archetype(oid).split(".")[0] for oid in ids}
        assert populations <= {
            "shared_iphone",
            "shared_win",
            "hostile_name",
            "dup2",
            "dup3",
            "dup_mobile",
            "dup_hybrid",
            "dup_young",
        }, populations
        assert all(tenant.truth.flags(oid) & named_alike or tenant.truth.archetype(oid).startswith("dup_young") for oid in ids)
    for kind in ("dup2", "dup3", "dup_mobile", "dup_hybrid", "dup_young"):
        groups: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for oid in tenant.object_ids():
            if tenant.truth.archetype(oid).startswith(f"{kind}."):
                d = tenant.device_json(oid)
                assert d is not None
                groups[hardware(d) or ""].append(d | {"role": tenant.truth.archetype(oid).split(".")[1]})
        assert len(groups) >= 2 and "" not in groups
        for members in groups.values():
            new = [m for m in members if m["role"] == "new"]
            assert len(new) == 1 and len({m["trustType"] for m in members}) == 1
            newest_reg = ts(new[0]["registrationDateTime"])
            for old in (m for m in members if m["role"] == "old"):
                last = ts(old["approximateLastSignInDateTime"])
                assert last < newest_reg
                assert (NOW - last >= 35 * DAY) != (kind == "dup_young")
    for kind in ("shared_win", "hostile_name"):
        names: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for oid in tenant.object_ids():
            if tenant.truth.archetype(oid).startswith(f"{kind}."):
                d = tenant.device_json(oid)
                assert d is not None
                names[d["displayName"]].append(d)
        for members in names.values():
            assert len(members) >= 2 and len({hardware(m) for m in members}) == len(members)


def test_hostile_impostors_registered_after_their_victims_last_sign_in() -> None:
    tenant = Tenant.generate(devices=5000, seed=8, now=NOW)
    pairs: defaultdict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for oid in tenant.truth.ids_with("hostile_name"):
        d = tenant.device_json(oid)
        assert d is not None
        pairs[d["displayName"]][tenant.truth.archetype(oid).split(".")[1]] = d
    assert len(pairs) >= 2
    for pair in pairs.values():
        victim, impostor = pair["victim"], pair["impostor"]
        assert (
            victim["trustType"] == impostor["trustType"] == "AzureAd" and victim["accountEnabled"] and impostor["accountEnabled"]
        )
        assert ts(impostor["registrationDateTime"]) > ts(victim["approximateLastSignInDateTime"])
        assert NOW - ts(victim["approximateLastSignInDateTime"]) < 85 * DAY
    assert any(NOW - ts(p["victim"]["approximateLastSignInDateTime"]) > 30 * DAY for p in pairs.values())  # on leave


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
            assert abs((NOW - signin) - 30 * DAY) >= 4 * DAY or "duplicate_older" not in tenant.truth.flags(oid)
        if signin is None and reg is not None and not edge:
            assert abs((NOW - reg) - 90 * DAY) >= 4 * DAY
        if reg is not None and signin is not None:
            assert reg <= signin or edge
        tag = janitor_tag(d)
        if tag is not None and not edge:
            assert abs((NOW - tag.at) - 30 * DAY) >= 2 * DAY
            assert signin is None or abs(signin - tag.at) >= DAY  # before or after the tag, never "about then"
        index = tenant.devices.find(oid)
        assert index is not None
        intune = tenant.intune_record(index)
        if intune is not None:
            assert abs((NOW - ts(intune["lastSyncDateTime"])) - 30 * DAY) >= DAY


def test_device_json_is_true_to_graph_one_device_per_population() -> None:
    """msgraph-sdk's generated Device model reads every property (extensionAttributes aside: the v1.0 model has
    no such field, it lands in additional_data) and every enum-like value is one Graph uses."""
    tenant = Tenant.generate(devices=400, seed=5, now=NOW)
    tenant.delete_device(tenant.truth.ids_with("pending", without=("protected_group",))[0])
    tenant.sync_from_on_premises()
    samples: dict[str, str] = {}
    for oid in tenant.object_ids():
        samples.setdefault(tenant.truth.archetype(oid), oid)
    assert set(samples) == set(load_expectations())
    factory = JsonParseNodeFactory()
    for population, oid in samples.items():
        raw = tenant.device_json(oid)
        assert raw is not None
        device = factory.get_root_parse_node("application/json", json.dumps(raw).encode()).get_object_value(GraphDevice)
        assert set(device.additional_data) == {"extensionAttributes"}, population
        assert all(not entry.additional_data for entry in device.alternative_security_ids or []), population
        assert device.profile_type in GRAPH_PROFILE_TYPES and device.trust_type in {"AzureAd", "Workplace", "ServerAd"}
        assert device.id == oid and (device.account_enabled is raw["accountEnabled"])


def test_generation_is_deterministic_and_seeded() -> None:
    a = Tenant.generate(devices=500, seed=4, now=NOW)
    b = Tenant.generate(devices=500, seed=4, now=NOW)
    c = Tenant.generate(devices=500, seed=5, now=NOW)
    assert a.object_ids() == b.object_ids() and a.object_ids() != c.object_ids()
    assert [a.device_json(i) for i in a.object_ids()] == [b.device_json(i) for i in b.object_ids()]
    assert [u.user_principal_name for u in a.users] == [u.user_principal_name for u in b.users]
    assert a.protected_group_id == b.protected_group_id != c.protected_group_id


def test_profiles_shape_the_fleet() -> None:
    stale = Tenant.generate(devices=5000, seed=1, now=NOW, profile="stale20").truth.class_counts()
    assert 0.19 <= stale["stale"] / 5000 <= 0.22
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
