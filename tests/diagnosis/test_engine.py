"""The pure stage engine: each stage, the validation order, and the rule about recommending a rejoin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.diagnosis import Diagnosis, Facts, diagnose, parse_dsregcmd
from shared.policy import Policy
from shared.scope import evaluate_join_scope
from shared.tags import Tag
from tests.diagnosis.fakes import ALL, NONE, NOW, TENANT_ID, device, fixture, join_policy, selected, user

ANA = user("ana@contoso.com")
REJOIN_WORDS = re.compile(r"dsregcmd /leave|\bjoin (the device |it )?again\b|\brejoin\b|re-register it|leave on the device", re.I)
NEGATED = re.compile(r"no (manual )?(leave/)?rejoin( is)? needed|without a rejoin", re.I)


def facts(*, dev=None, local: str | None = None, scope=None, **kw) -> Facts:
    return Facts(
        device_ref=kw.pop("ref", dev.display_name if dev is not None else "DESKTOP-NEW"),
        now=NOW,
        device=dev,
        candidates=[dev] if dev is not None else [],
        local=parse_dsregcmd(fixture(local)) if local else None,
        scope=scope,
        user=kw.pop("who", ANA if scope is not None else None),
        tenant_id=kw.pop("tenant_id", TENANT_ID),
        **kw,
    )


def scope_for(allowed=ALL, *, count: int = 3, quota: int = 50, member: set[str] | None = None):
    return evaluate_join_scope(join_policy(allowed, quota), ANA.id, member or set(), count)


def evidence(d: Diagnosis, check: str):
    return [e for e in d.evidence if e.check == check]


def check_rejoin_rule(d: Diagnosis) -> None:
    """Leave/rejoin is recommended only with evidence of incomplete or mismatched registration (stages 2, 3)."""
    if REJOIN_WORDS.search(NEGATED.sub("", d.next_step)):
        assert d.recommends_rejoin, d.next_step
    if d.recommends_rejoin:
        assert d.stage in (2, 3)
        assert any(e.status == "fail" and e.stage in (2, 3) for e in d.evidence)


# --------------------------------------------------------------------------- stage 1


def test_stage1_join_scope_none() -> None:
    d = diagnose(facts(scope=scope_for(NONE), local="win11_not_joined.txt"))
    assert d.stage == 1 and d.confidence == "confirmed"
    assert evidence(d, "eligibility.scope")[0].status == "fail"
    assert "Users may join devices" in d.next_step and not d.recommends_rejoin
    check_rejoin_rule(d)


def test_stage1_selected_scope_user_not_member_then_member() -> None:
    group = "11111111-2222-3333-4444-555555555555"
    d = diagnose(facts(scope=scope_for(selected(groups=[group])), local="win11_not_joined.txt"))
    assert d.stage == 1 and "selected" in d.summary
    ok = diagnose(facts(scope=scope_for(selected(groups=[group]), member={group}), local="win11_not_joined.txt"))
    assert ok.stage != 1
    assert evidence(ok, "eligibility.scope")[0].status == "pass"


def test_stage1_quota_lists_only_the_users_stale_devices() -> None:
    stale_old = device("OLD-LAPTOP", signed_in_days_ago=200)
    stale_older = device("OLDER-PC", signed_in_days_ago=400)
    never = device("NEVER-USED", signed_in_days_ago=None, registered_days_ago=300)
    fresh = device("DAILY-PC", signed_in_days_ago=2)
    hybrid_old = device("HYB-OLD", trust="ServerAd", signed_in_days_ago=500)  # does not count against the quota
    autopilot_old = device("AP-OLD", signed_in_days_ago=300, physical_ids=["[ZTDID]:abc"])  # protected: never proposed
    mine = [stale_old, stale_older, never, fresh, hybrid_old, autopilot_old]
    d = diagnose(facts(scope=scope_for(count=5, quota=5), local="win11_not_joined.txt", user_devices=mine))
    assert d.stage == 1 and "quota of 5" in d.summary
    assert [s.display_name for s in d.remediation] == ["OLDER-PC", "NEVER-USED", "OLD-LAPTOP"]  # oldest activity first
    assert "OLDER-PC" in d.next_step and "disabling first" in d.next_step
    assert evidence(d, "eligibility.quota")[0].status == "fail"


def test_stage1_does_not_apply_to_hybrid_or_self_deploying_autopilot() -> None:
    hybrid = diagnose(
        facts(dev=device("LT-1", trust="ServerAd"), scope=scope_for(NONE), local="win10_1709_hybrid_joined.txt", ref="LT-1")
    )
    assert hybrid.stage != 1
    assert evidence(hybrid, "eligibility")[0].status == "not_applicable"
    autopilot = device("KIOSK-7", physical_ids=["[ZTDID]:xyz"], registered=True)
    d = diagnose(facts(dev=autopilot, scope=None))
    assert evidence(d, "eligibility")[0].status == "not_applicable"


def test_existing_healthy_join_is_not_blamed_on_scope() -> None:
    dev = device("DESKTOP-7QK2M4L", device_id="4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13")
    d = diagnose(facts(dev=dev, scope=scope_for(NONE), local="win11_entra_joined_healthy.txt"))
    assert d.stage == "healthy"
    assert any(e.status == "info" and "unaffected" in e.detail for e in evidence(d, "eligibility"))


def test_stage1_from_error_code_when_user_unknown() -> None:
    local = fixture("win11_not_joined.txt").replace("KeySignTest : SKIPPED", "Client ErrorCode : 0x801c0003")
    f = Facts(device_ref="DESKTOP-N3W0PC1", now=NOW, local=parse_dsregcmd(local))
    d = diagnose(f)
    assert d.stage == 1 and d.confidence == "likely"
    assert d.error_codes[0].symbol is None and d.error_codes[0].source.startswith("https://learn.microsoft.com/")


# --------------------------------------------------------------------------- stage 2


def test_stage2_pending_object_without_local_output() -> None:
    pending = device("LT-0412", trust="ServerAd", registered=False, registered_days_ago=None, signed_in_days_ago=None)
    d = diagnose(facts(dev=pending))
    assert d.stage == 2 and d.confidence == "likely"
    assert d.recommends_rejoin  # registration is incomplete: re-registering is safe
    assert "dsregcmd /status" in d.next_step
    check_rejoin_rule(d)


def test_stage2_pending_with_sync_join_directory_error() -> None:
    pending = device("LT-0412", trust="ServerAd", registered=False)
    d = diagnose(facts(dev=pending, local="win10_hybrid_pending_sync_join.txt"))
    assert d.stage == 2 and d.confidence == "confirmed"
    assert [c.code for c in d.error_codes] == ["0x801c03f2"]
    assert d.error_codes[0].symbol == "DSREG_E_DIRECTORY_FAILURE"
    check_rejoin_rule(d)


# --------------------------------------------------------------------------- stage 3


def test_stage3_device_joined_to_another_tenant() -> None:
    dev = device("DESKTOP-FAB0042", device_id="c5e7a9b1-3d5f-4a7c-9e1b-3d5f7a9c1e3b")
    d = diagnose(facts(dev=dev, local="win11_mismatched_tenant.txt"))
    assert d.stage == 3 and "another tenant" in d.summary and "Fabrikam" in d.summary
    assert d.recommends_rejoin
    check_rejoin_rule(d)


def test_stage3_device_id_mismatch() -> None:
    other = device("DESKTOP-7QK2M4L", device_id="99999999-9999-4999-8999-999999999999")
    d = diagnose(facts(dev=other, local="win11_entra_joined_healthy.txt"))
    assert d.stage == 3 and "DeviceId" in d.summary
    assert "4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13" in evidence(d, "tenant.match")[0].detail
    check_rejoin_rule(d)


def test_stage3_object_deleted_while_device_thinks_it_is_joined() -> None:
    d = diagnose(facts(dev=None, local="win11_device_deleted.txt", ref="DESKTOP-GONE007"))
    assert d.stage == 3 and d.recommends_rejoin and d.device is None
    assert "7d9f1b3d-5f7a-4c9e-b1d3-f5a7c9e1b3d5" in d.summary
    check_rejoin_rule(d)


def test_stage3_disabled_by_the_janitor_is_reenabled_not_rejoined() -> None:
    tag = Tag("disabled", NOW - timedelta(days=10), "stale", "run-1").render()
    dev = device("DESKTOP-GONE007", device_id="7d9f1b3d-5f7a-4c9e-b1d3-f5a7c9e1b3d5", enabled=False, ext15=tag)
    d = diagnose(facts(dev=dev, local="win11_device_deleted.txt"))
    assert d.stage == 3 and "disabled by entra-janitor" in d.summary
    assert "re-enable" in d.next_step and not d.recommends_rejoin
    check_rejoin_rule(d)


def test_stage3_keys_marked_for_recovery() -> None:
    dev = device("LT-0555", trust="ServerAd", device_id="0f2b4d6f-8a0c-4e2b-9d6f-8a0c2e4b6d8f")
    d = diagnose(facts(dev=dev, local="win11_keys_need_recovery.txt"))
    assert d.stage == 3 and "recovery" in d.summary and not d.recommends_rejoin
    check_rejoin_rule(d)


def test_stage3_device_not_joined_but_tenant_object_complete() -> None:
    dev = device("DESKTOP-N3W0PC1")
    d = diagnose(facts(dev=dev, local="win11_not_joined.txt", scope=scope_for()))
    assert d.stage == 3 and d.recommends_rejoin
    check_rejoin_rule(d)


# --------------------------------------------------------------------------- stage 4


def test_stage4_discovery_failed_on_the_network() -> None:
    d = diagnose(facts(dev=None, local="win10_hybrid_discovery_failed.txt", ref="LT-0977"))
    assert d.stage == 4 and d.confidence == "confirmed"
    assert "DRS Discovery Test" in d.summary
    assert d.next_step.startswith("0x801c0021")  # the catalogue's step for the first connectivity code
    assert not d.recommends_rejoin
    check_rejoin_rule(d)


def test_stage4_pending_object_whose_attempts_fail_on_the_network() -> None:
    pending = device("LT-0977", trust="ServerAd", registered=False)
    d = diagnose(facts(dev=pending, local="win10_hybrid_discovery_failed.txt"))
    assert d.stage == 4 and not d.recommends_rejoin


def test_no_object_and_no_evidence_asks_for_evidence_instead_of_guessing() -> None:
    d = diagnose(facts(dev=None, scope=scope_for()))
    assert d.stage == 4 and d.confidence == "needs_evidence"
    assert "dsregcmd /status" in d.next_step and not d.recommends_rejoin
    assert evidence(d, "connectivity")[0].status == "not_applicable"
    check_rejoin_rule(d)


# --------------------------------------------------------------------------- stage 5 and healthy


def test_stage5_prt_missing_after_a_healthy_join() -> None:
    dev = device("DESKTOP-PRT0001", device_id="1e3a5c7e-9b1d-4f3a-8c5e-7b9d1f3a5c7e")
    d = diagnose(facts(dev=dev, local="win11_prt_missing.txt", scope=scope_for()))
    assert d.stage == 5 and "Primary Refresh Token" in d.summary
    assert evidence(d, "join")[0].status == "pass"  # downstream is looked at only after the join is proven healthy
    assert d.next_step.startswith("0xc000006d (STATUS_LOGON_FAILURE)")
    attempts = evidence(d, "downstream.prt")[0].data["attempts"]
    assert attempts[0]["Server Error Code"] == "invalid_grant"
    check_rejoin_rule(d)


def test_stage5_not_enrolled_in_mdm_and_non_compliant() -> None:
    unmanaged = device("DESKTOP-7QK2M4L", device_id="4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13", managed=False)
    d = diagnose(facts(dev=unmanaged, local="win11_entra_joined_healthy.txt"))
    assert d.stage == 5 and "MDM" in d.summary
    noncompliant = device("DESKTOP-7QK2M4L", device_id="4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13", compliant=False)
    d = diagnose(facts(dev=noncompliant, local="win11_entra_joined_healthy.txt"))
    assert d.stage == 5 and "compliant" in d.summary


def test_healthy_with_and_without_local_output() -> None:
    dev = device("DESKTOP-7QK2M4L", device_id="4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13")
    d = diagnose(facts(dev=dev, local="win11_entra_joined_healthy.txt", scope=scope_for()))
    assert d.stage == "healthy" and d.confidence == "confirmed" and not d.recommends_rejoin
    tenant_only = diagnose(facts(dev=dev))
    assert tenant_only.stage == "healthy" and tenant_only.confidence == "likely"
    assert "dsregcmd /status" in tenant_only.next_step
    hybrid = device("LT-9", trust="ServerAd", device_id="8c3e1f7a-52b9-4d06-a1e4-6f2b9d7c3a58")
    assert diagnose(facts(dev=hybrid, local="win10_1709_hybrid_joined.txt")).stage == "healthy"


def test_registered_byod_device_is_healthy_without_a_prt() -> None:
    dev = device(
        "LAPTOP-HOME22", trust="Workplace", device_id="2a6c8e0f-4b7d-4e19-a3c5-8d1f6b2e9a70", managed=None, compliant=None
    )
    d = diagnose(facts(dev=dev, local="win11_registered_byod.txt", scope=scope_for()))
    assert d.stage == "healthy"
    assert evidence(d, "eligibility.scope")[0].status == "not_applicable"


def test_validation_order_scope_before_local_and_tenant_problems() -> None:
    """An ineligible user is reported first even when the device also looks mismatched."""
    d = diagnose(facts(dev=None, local="win11_mismatched_tenant.txt", scope=scope_for(NONE)))
    assert d.stage == 1
    checks = [e.check for e in d.evidence]
    assert checks.index("eligibility.scope") < len(checks)
    assert "local.state" not in checks  # the walk stopped at the first failing stage


def test_duplicates_are_reported_and_the_local_device_id_picks_the_object() -> None:
    old = device("DESKTOP-7QK2M4L", signed_in_days_ago=200)
    current = device("DESKTOP-7QK2M4L", device_id="4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13")
    f = Facts(
        device_ref="DESKTOP-7QK2M4L",
        now=NOW,
        device=current,
        candidates=[old, current],
        local=parse_dsregcmd(fixture("win11_entra_joined_healthy.txt")),
    )
    d = diagnose(f)
    assert d.stage == "healthy"
    assert len(evidence(d, "tenant.lookup")[0].data["objects"]) == 2


# --------------------------------------------------------------------------- properties

FIXTURE_NAMES = [None, *sorted(p.name for p in __import__("tests.diagnosis.fakes", fromlist=["FIXTURES"]).FIXTURES.glob("*.txt"))]


@st.composite
def any_facts(draw: st.DrawFn) -> Facts:
    local = draw(st.sampled_from(FIXTURE_NAMES))
    dev = None
    if draw(st.booleans()):
        parsed = parse_dsregcmd(fixture(local)) if local else None
        same_id = draw(st.booleans()) and parsed is not None and parsed.device_id
        dev = device(
            "DEV",
            device_id=parsed.device_id if same_id else None,
            trust=draw(st.sampled_from(["AzureAd", "ServerAd", "Workplace"])),
            enabled=draw(st.booleans()),
            registered=draw(st.booleans()),
            managed=draw(st.sampled_from([True, False, None])),
            compliant=draw(st.sampled_from([True, False, None])),
            signed_in_days_ago=draw(st.sampled_from([None, 1, 100, 400])),
            physical_ids=draw(st.sampled_from([[], ["[ZTDID]:x"]])),
        )
    scope = None
    if draw(st.booleans()):
        scope = scope_for(draw(st.sampled_from([ALL, NONE, selected()])), count=draw(st.integers(0, 6)), quota=5)
    return facts(
        dev=dev, local=local, scope=scope, ref="DEV", tenant_id=draw(st.sampled_from([TENANT_ID, None])), policy=Policy()
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_facts())
def test_every_diagnosis_is_well_formed_and_never_suggests_rejoin_without_evidence(f: Facts) -> None:
    d = diagnose(f)
    assert d.stage in (1, 2, 3, 4, 5, "healthy")
    assert d.summary and d.next_step and d.evidence
    assert d.confidence in ("confirmed", "likely", "needs_evidence")
    check_rejoin_rule(d)
    if d.stage in (5, "healthy"):
        assert any(e.check == "join" and e.status == "pass" for e in d.evidence)
        assert f.device is not None and f.device.account_enabled is not False
    if d.stage == 4:
        assert any(e.check == "connectivity" for e in d.evidence) or d.confidence != "confirmed"
    assert Diagnosis.__struct_fields__  # and it serialises
    assert d.to_builtins()["stage"] == d.stage


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if n])
def test_every_fixture_alone_gets_a_diagnosis(name: str) -> None:
    d = diagnose(Facts(device_ref="X", now=NOW, local=parse_dsregcmd(fixture(name)), tenant_id=TENANT_ID))
    check_rejoin_rule(d)
