"""classify(): first match wins, in order; propose_action(): issue 4's table; properties over random devices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.classify import (
    HEALTHY,
    ClassifyContext,
    DeviceClass,
    Finding,
    classify,
    is_device_write,
    propose_action,
    siblings_of,
    sync_carries,
)
from shared.models import AlternativeSecurityId, Device, ExtensionAttributes
from shared.policy import DEFAULT_POLICY, Policy, parse_policy
from tests.classify.devices import NOW, X509, days_ago, device, hybrid, tagged

CTX = ClassifyContext(Policy(), NOW)


def test_a_bare_device_with_missing_fields_is_healthy():
    assert classify(Device(id="x"), CTX) == HEALTHY
    assert classify(device(), CTX) == HEALTHY


def test_protected_wins_over_everything_else():
    d = hybrid(alternative_security_ids=[], physical_ids=["[ZTDID]:z"], registration_date_time=days_ago(300))
    assert classify(d, CTX).device_class is DeviceClass.PROTECTED
    old = device(physical_ids=["[ZTDID]:z"], approximate_last_sign_in_date_time=days_ago(400))
    assert classify(old, CTX).device_class is DeviceClass.PROTECTED


def test_pending_wins_over_stale_and_expired_over_duplicate():
    d = hybrid(alternative_security_ids=[], approximate_last_sign_in_date_time=days_ago(400))
    assert classify(d, CTX).device_class is DeviceClass.PENDING
    expired = device(physical_ids=["[HWID]:h:9"], account_enabled=False, extension_attributes=tagged(40),
                     approximate_last_sign_in_date_time=days_ago(200))
    newer = device(physical_ids=["[HWID]:h:9"], registration_date_time=days_ago(10))
    ctx = ClassifyContext(Policy(), NOW, siblings=siblings_of([expired, newer]))
    assert classify(expired, ctx).device_class is DeviceClass.EXPIRED_DISABLED


def test_duplicate_wins_over_stale_and_unmanaged():
    old = device(physical_ids=["[HWID]:h:8"], is_managed=False, approximate_last_sign_in_date_time=days_ago(200))
    new = device(physical_ids=["[HWID]:h:8"], registration_date_time=days_ago(100))
    ctx = ClassifyContext(Policy(), NOW, siblings=siblings_of([old, new]))
    assert classify(old, ctx).device_class is DeviceClass.DUPLICATE
    assert classify(old, CTX).device_class is DeviceClass.STALE  # without the fleet view
    assert classify(new, ctx) == HEALTHY


def test_stale_wins_over_unmanaged():
    d = device(is_managed=False, approximate_last_sign_in_date_time=days_ago(200))
    assert classify(d, CTX).device_class is DeviceClass.STALE
    assert classify(device(is_managed=False), CTX).device_class is DeviceClass.UNMANAGED


# --------------------------------------------------------------------------- propose_action (issue 4's table)

STALE = {"approximate_last_sign_in_date_time": days_ago(200)}


def _finding(d: Device, policy: Policy = DEFAULT_POLICY, siblings: list[Device] | None = None) -> Finding:
    return classify(d, ClassifyContext(policy, NOW, siblings=siblings_of(siblings) if siblings else None))


@pytest.mark.parametrize(
    ("make", "policy_yaml", "expected"),
    [
        (lambda: device(**STALE), "", "disable"),  # stale, Entra joined Windows
        (lambda: device(trust_type="Workplace", **STALE), "", "disable"),  # stale, registered Windows
        (lambda: device(operating_system="iOS", trust_type="Workplace", **STALE), "", "tag"),
        (lambda: device(operating_system="Android", trust_type="Workplace", **STALE), "stale:\n  non_windows_action: delete\n",
         "delete"),
        (lambda: device(operating_system="MacMDM", **STALE), "", "tag"),
        # tagged on an earlier night: nothing left to do but report it
        (lambda: device(operating_system="iOS", trust_type="Workplace", extension_attributes=tagged(10, action="tagged"),
                        **STALE), "", "report"),
        (lambda: device(operating_system="iOS", trust_type="Workplace", extension_attributes=tagged(10, action="tagged"),
                        **STALE), "stale:\n  non_windows_action: delete\n", "delete"),
        (lambda: hybrid(**STALE), "", "notify_onprem"),  # synced hybrid stale: fixed in AD, never an Entra write
        # hybrid objects sync will never change: the cloud path (used to get "disable it in AD")
        (lambda: hybrid(on_premises_sync_enabled=False, **STALE), "", "disable"),
        (lambda: hybrid(on_premises_sync_enabled=None, **STALE), "", "disable"),
        (lambda: hybrid(operating_system_version="6.3.9600", **STALE), "", "disable"),
        (lambda: device(account_enabled=False, extension_attributes=tagged(45), **STALE), "", "delete"),
        (lambda: device(account_enabled=True, extension_attributes=tagged(45), **STALE), "", "clear_tag"),  # re-enabled
        (lambda: hybrid(alternative_security_ids=[AlternativeSecurityId(type=2, key="!!")], **STALE),
         "pending:\n  action: delete\n", "report"),  # registration_unclear: never acted on
        (lambda: device(profile_type="Printer", **STALE), "", None),  # special purpose: protected
        (lambda: hybrid(alternative_security_ids=[], registration_date_time=days_ago(30)), "", "notify_onprem"),
        (lambda: hybrid(alternative_security_ids=[], registration_date_time=days_ago(30)),
         "pending:\n  action: delete\n", "delete"),
        (lambda: hybrid(alternative_security_ids=[], registration_date_time=days_ago(30), operating_system_version="6.1.7601"),
         "pending:\n  action: delete\n", "notify_onprem"),  # down-level: never pending-deleted
        (lambda: hybrid(alternative_security_ids=[], registration_date_time=days_ago(3)), "pending:\n  action: delete\n",
         "report"),  # pending, not stuck
        (lambda: device(approximate_last_sign_in_date_time=None, registration_date_time=days_ago(200)), "", "report"),
        (lambda: device(is_managed=False), "", "report"),  # unmanaged
        (lambda: device(), "", None),  # healthy
        (lambda: device(physical_ids=["[ZTDID]:z"], **STALE), "", None),  # protected
    ],
)
def test_proposed_action_per_class(make, policy_yaml, expected):
    policy = parse_policy(policy_yaml)
    d = make()
    assert propose_action(_finding(d, policy), d, policy) == expected


def test_duplicates_follow_the_platform_hybrid_non_windows_windows():
    for trust, os, expected in (("AzureAd", "Windows", "disable"), ("ServerAd", "Windows", "notify_onprem"),
                                ("Workplace", "iOS", "tag")):
        hw = [f"[HWID]:h:{trust}"]
        old = device(physical_ids=hw, trust_type=trust, operating_system=os, on_premises_sync_enabled=trust == "ServerAd",
                     approximate_last_sign_in_date_time=days_ago(30))
        new = device(physical_ids=hw, trust_type=trust, operating_system=os, on_premises_sync_enabled=trust == "ServerAd",
                     registration_date_time=days_ago(10))
        finding = _finding(old, siblings=[old, new])
        assert finding.device_class is DeviceClass.DUPLICATE
        assert propose_action(finding, old, Policy()) == expected


def test_every_device_write_counts_tags_included():
    """A tag can move a device in or out of a Conditional Access filter: it counts like a disable."""
    assert all(is_device_write(a) for a in ("tag", "clear_tag", "disable", "delete"))
    assert not any(is_device_write(a) for a in ("notify", "notify_onprem", "report", None))


# --------------------------------------------------------------------------- properties over random devices

_times = st.one_of(st.none(), st.integers(min_value=-10, max_value=2000).map(lambda d: NOW - timedelta(days=d, seconds=7)))
_devices = st.builds(
    Device,
    id=st.uuids().map(str),
    display_name=st.one_of(st.none(), st.sampled_from(["PC-1", "PC-2", "KIOSK-1"])),
    account_enabled=st.one_of(st.none(), st.booleans()),
    approximate_last_sign_in_date_time=_times,
    registration_date_time=_times,
    trust_type=st.one_of(st.none(), st.sampled_from(["AzureAd", "ServerAd", "Workplace"])),
    operating_system=st.one_of(st.none(), st.sampled_from(["Windows", "iOS", "Android", "MacMDM"])),
    is_managed=st.one_of(st.none(), st.booleans()),
    physical_ids=st.lists(st.sampled_from(["[ZTDID]:z", "[HWID]:h:1", "[HWID]:h:2", "[USER-HWID]:u:1", "[GID]:g"]), max_size=2),
    operating_system_version=st.sampled_from(["10.0.22631.1", "6.1.7601", None]),
    on_premises_sync_enabled=st.one_of(st.none(), st.booleans()),
    profile_type=st.sampled_from([None, "RegisteredDevice", "Printer", "IoT"]),
    alternative_security_ids=st.lists(st.sampled_from([X509, AlternativeSecurityId(type=2, key="!!")]), max_size=2),
    extension_attributes=st.one_of(st.none(), st.just(tagged(60)), st.just(ExtensionAttributes())),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_devices, min_size=1, max_size=6))
def test_classification_is_total_and_never_touches_what_it_must_not(fleet):
    policy = parse_policy("protect:\n  name_patterns: ['KIOSK-*']\n")
    ctx = ClassifyContext(policy, NOW, siblings=siblings_of(fleet))
    for d in fleet:
        finding = classify(d, ctx)
        action = propose_action(finding, d, policy)
        signed_in = d.approximate_last_sign_in_date_time
        if finding.device_class is DeviceClass.STALE:
            assert signed_in is not None and NOW - signed_in > timedelta(days=21)
        if any(p.startswith("[ZTDID]") for p in d.physical_ids) or (d.display_name or "").startswith("KIOSK-"):
            assert finding.device_class is DeviceClass.PROTECTED and action is None
        if sync_carries(d) and finding.device_class in (DeviceClass.STALE, DeviceClass.DUPLICATE):
            assert action == "notify_onprem"  # synced hybrid: fixed in AD, never an Entra write
        if action == "disable":
            assert (d.operating_system or "").startswith("Windows")
        if is_device_write(action) and finding.device_class is not DeviceClass.REACTIVATED:
            assert d.profile_type not in ("Printer", "IoT")
        if finding.device_class is DeviceClass.DUPLICATE:
            _assert_real_duplicate(d, fleet)
        assert (action is None) == (not finding.candidate)


def _assert_real_duplicate(d: Device, fleet: list[Device]) -> None:
    """A duplicate is never a shared name: a live newer object of the same hardware registered after it went silent."""
    signed_in = d.approximate_last_sign_in_date_time
    assert signed_in is not None and NOW - signed_in >= timedelta(days=21)
    hardware = {p for p in d.physical_ids if "HWID]" in p}
    assert any(
        o.id != d.id and o.trust_type == d.trust_type and o.account_enabled is True and hardware & set(o.physical_ids)
        and o.registration_date_time is not None and o.registration_date_time > signed_in
        for o in fleet
    )
