"""Each classification rule on its own, on hand-written devices, including the awkward cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from msgspec.structs import replace

from shared.classify import (
    ClassifyContext,
    DeviceClass,
    decode_key,
    duplicate,
    expired_disabled,
    has_x509_key,
    is_pending,
    no_signin_record,
    pending,
    protected,
    siblings_of,
    stale,
    unmanaged,
)
from shared.models import AlternativeSecurityId, Device, ExtensionAttributes
from shared.policy import Policy, parse_policy
from tests.classify.devices import NOW, X509, days_ago, device, hybrid, key_of, tagged

CTX = ClassifyContext(Policy(), NOW)


def ctx_for(yaml_text: str = "", *, protected_ids: frozenset[str] = frozenset(), fleet: list[Device] | None = None):
    policy = parse_policy(yaml_text)
    return ClassifyContext(policy, NOW, protected_ids, siblings_of(fleet) if fleet is not None else None)


# --------------------------------------------------------------------------- protected


def test_autopilot_ztdid_is_protected_with_the_entry_as_evidence():
    d = device(physical_ids=["[HWID]:h:1", "[ZTDID]:ztd-1234", "[GID]:g:2"])
    assert protected(d, CTX) == {"ztdid": "[ZTDID]:ztd-1234", "reasons": ["autopilot"]}


def test_other_physical_id_tags_are_not_autopilot():
    assert protected(device(physical_ids=["[USER-HWID]:x", "[GID]:g", "[USER-GID]:u"]), CTX) is None
    assert protected(device(physical_ids=[]), CTX) is None


def test_name_patterns_are_case_insensitive_globs_on_the_whole_name():
    ctx = ctx_for("protect:\n  name_patterns: ['KIOSK-*', 'LAB-??']\n")
    assert protected(device(display_name="kiosk-lobby"), ctx) == {"name_pattern": "KIOSK-*", "reasons": ["name_pattern"]}
    assert protected(device(display_name="LAB-07"), ctx)["name_pattern"] == "LAB-??"
    assert protected(device(display_name="LAB-007"), ctx) is None
    assert protected(device(display_name="MYKIOSK-1"), ctx) is None
    assert protected(device(display_name=None), ctx) is None


def test_protected_group_membership_by_object_id():
    d = device()
    assert protected(d, ctx_for(protected_ids=frozenset({d.id}))) == {"reasons": ["group"]}
    assert protected(d, ctx_for(protected_ids=frozenset({"someone-else"}))) is None


def test_every_matching_protection_is_listed():
    d = device(display_name="KIOSK-1", physical_ids=["[ZTDID]:z"])
    evidence = protected(d, ctx_for("protect:\n  name_patterns: ['KIOSK-*']\n", protected_ids=frozenset({d.id})))
    assert evidence["reasons"] == ["autopilot", "name_pattern", "group"]


# --------------------------------------------------------------------------- pending


def test_x509_key_decoding():
    assert decode_key(X509.key) == "X509:<SHA1-TP-PUBKEY>0A1B2C3D4E5F"
    assert decode_key("not base64!!") is None
    assert decode_key("QQ==") is None  # one byte: not UTF-16LE
    assert decode_key(None) is None and decode_key("") is None
    assert has_x509_key([AlternativeSecurityId(type=2, key=key_of("X509:abc"))])
    assert not has_x509_key([AlternativeSecurityId(type=2, key=key_of("WAA1ADAA"))])
    assert not has_x509_key([AlternativeSecurityId(type=2, key="%%%")])
    assert not has_x509_key([AlternativeSecurityId(type=2, key=None)])


def test_hybrid_without_x509_key_is_pending_and_stuck_after_the_policy_days():
    d = hybrid(alternative_security_ids=[], registration_date_time=days_ago(20), on_premises_security_identifier="S-1-5-21-1")
    evidence = pending(d, CTX)
    assert evidence["stuck"] is True and evidence["age_days"] == 20 and evidence["stuck_after_days"] == 14
    assert evidence["age_from"] == "registrationDateTime"
    assert evidence["on_premises_security_identifier"] == "S-1-5-21-1"
    young = hybrid(alternative_security_ids=[], registration_date_time=days_ago(3))
    assert pending(young, CTX)["stuck"] is False
    assert pending(young, ctx_for("pending:\n  stuck_after_days: 2\n"))["stuck"] is True


def test_pending_age_falls_back_to_the_last_sync_and_is_unknown_without_either():
    synced = hybrid(alternative_security_ids=[], registration_date_time=None, on_premises_last_sync_date_time=days_ago(16))
    evidence = pending(synced, CTX)
    assert evidence["age_from"] == "onPremisesLastSyncDateTime" and evidence["age_days"] == 16 and evidence["stuck"] is True
    assert pending(hybrid(alternative_security_ids=[], registration_date_time=None,
                          on_premises_last_sync_date_time=days_ago(12)), CTX)["stuck"] is False
    evidence = pending(hybrid(alternative_security_ids=[], registration_date_time=None), CTX)
    assert evidence["age_days"] is None and evidence["stuck"] is False and evidence["age_from"] is None


def test_pending_with_future_registration_is_not_stuck():
    evidence = pending(hybrid(alternative_security_ids=[], registration_date_time=NOW + timedelta(days=2)), CTX)
    assert evidence["stuck"] is False and evidence["age_days"] < 0


def test_malformed_or_foreign_keys_do_not_count_as_registered():
    for ids in ([AlternativeSecurityId(type=2, key="@@not-base64@@")], [AlternativeSecurityId(type=2, key=key_of("SHA1:x"))]):
        assert is_pending(hybrid(alternative_security_ids=ids))
    mixed = [AlternativeSecurityId(type=2, key="@@"), X509]
    assert not is_pending(hybrid(alternative_security_ids=mixed))


def test_only_hybrid_devices_can_be_pending():
    assert pending(device(alternative_security_ids=[]), CTX) is None  # AzureAd without a key
    assert pending(device(trust_type="Workplace", alternative_security_ids=[]), CTX) is None
    assert pending(device(trust_type=None, alternative_security_ids=[]), CTX) is None
    assert pending(hybrid(), CTX) is None  # registered


# --------------------------------------------------------------------------- expired_disabled


def test_disabled_by_us_long_enough_ago_is_expired():
    evidence = expired_disabled(device(account_enabled=False, extension_attributes=tagged(31)), CTX)
    assert evidence["disabled_days"] == 31 and evidence["delete_after_disabled_days"] == 30
    assert evidence["attribute"] == "extensionAttribute15" and evidence["disabled_reason"] == "stale"


def test_expiry_boundary_and_future_tags():
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(30)), CTX) is not None
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(29.9)), CTX) is None
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(-3)), CTX) is None


def test_not_expired_without_our_disabled_tag():
    assert expired_disabled(device(account_enabled=True, extension_attributes=tagged(100)), CTX) is None
    assert expired_disabled(device(account_enabled=None, extension_attributes=tagged(100)), CTX) is None
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(100, action="tagged")), CTX) is None
    foreign = ExtensionAttributes(extension_attribute15="CostCenter 42")
    assert expired_disabled(device(account_enabled=False, extension_attributes=foreign), CTX) is None
    assert expired_disabled(device(account_enabled=False, extension_attributes=None), CTX) is None


def test_the_tag_is_read_from_the_policy_attribute():
    d = device(account_enabled=False, extension_attributes=tagged(60, attribute=3))
    assert expired_disabled(d, CTX) is None
    assert expired_disabled(d, ctx_for("tag:\n  attribute: 3\n"))["attribute"] == "extensionAttribute3"


# --------------------------------------------------------------------------- duplicate


def test_older_object_of_a_name_is_the_duplicate_and_the_newest_never_is():
    old = device(display_name="PC-1", approximate_last_sign_in_date_time=days_ago(40))
    new = device(display_name="PC-1", approximate_last_sign_in_date_time=days_ago(2))
    ctx = ctx_for(fleet=[old, new])
    evidence = duplicate(old, ctx)
    assert evidence["newer_object_id"] == new.id
    assert evidence["newer_last_sign_in"] == days_ago(2).isoformat().replace("+00:00", "Z")
    assert duplicate(new, ctx) is None


def test_equal_timestamps_are_not_duplicates():
    a = device(display_name="PC-2", approximate_last_sign_in_date_time=days_ago(10))
    b = device(display_name="PC-2", approximate_last_sign_in_date_time=days_ago(10))
    c = device(display_name="PC-2", approximate_last_sign_in_date_time=days_ago(50))
    ctx = ctx_for(fleet=[a, b, c])
    assert duplicate(a, ctx) is None and duplicate(b, ctx) is None
    assert duplicate(c, ctx) is not None


def test_same_name_other_trust_type_is_not_a_duplicate():
    joined = device(display_name="PC-3", approximate_last_sign_in_date_time=days_ago(40))
    registered = device(display_name="PC-3", trust_type="Workplace", approximate_last_sign_in_date_time=days_ago(1))
    ctx = ctx_for(fleet=[joined, registered])
    assert duplicate(joined, ctx) is None


def test_blank_timestamps_and_disabled_objects_are_never_compared():
    blank = device(display_name="PC-4", approximate_last_sign_in_date_time=None)
    old = device(display_name="PC-4", approximate_last_sign_in_date_time=days_ago(60))
    disabled_newer = device(display_name="PC-4", account_enabled=False, approximate_last_sign_in_date_time=days_ago(1))
    ctx = ctx_for(fleet=[blank, old, disabled_newer])
    assert duplicate(blank, ctx) is None  # no timestamp: cannot be judged older
    assert duplicate(old, ctx) is None  # the only newer object is disabled: not the live one
    assert duplicate(disabled_newer, ctx) is None


def test_duplicate_needs_the_fleet_view_and_a_name():
    old = device(display_name="PC-5", approximate_last_sign_in_date_time=days_ago(40))
    assert duplicate(old, CTX) is None  # no siblings in the context
    unnamed = device(display_name=None, approximate_last_sign_in_date_time=days_ago(40))
    assert duplicate(unnamed, ctx_for(fleet=[unnamed, device(display_name=None)])) is None


# --------------------------------------------------------------------------- stale


def test_stale_after_the_threshold_with_evidence():
    evidence = stale(device(approximate_last_sign_in_date_time=days_ago(91)), CTX)
    assert evidence["days_since_sign_in"] == 91 and evidence["threshold_days"] == 90
    assert stale(device(approximate_last_sign_in_date_time=days_ago(90)), CTX) is None  # exactly at: not older
    assert stale(device(approximate_last_sign_in_date_time=days_ago(89)), CTX) is None


def test_future_null_and_disabled_are_not_stale():
    assert stale(device(approximate_last_sign_in_date_time=NOW + timedelta(days=3)), CTX) is None
    assert stale(device(approximate_last_sign_in_date_time=None), CTX) is None
    assert stale(device(account_enabled=False, approximate_last_sign_in_date_time=days_ago(300)), CTX) is None
    assert stale(device(account_enabled=None, approximate_last_sign_in_date_time=days_ago(300)), CTX) is None


def test_platform_overrides_match_operating_system_case_insensitively():
    ctx = ctx_for("stale:\n  platforms:\n    iOS: 180\n")
    assert stale(device(operating_system="IOS", approximate_last_sign_in_date_time=days_ago(120)), ctx) is None
    assert stale(device(operating_system="iOS", approximate_last_sign_in_date_time=days_ago(181)), ctx)["threshold_days"] == 180
    assert stale(device(operating_system="Windows", approximate_last_sign_in_date_time=days_ago(120)), ctx) is not None
    assert stale(device(operating_system=None, approximate_last_sign_in_date_time=days_ago(120)), ctx) is not None


def test_nothing_younger_than_21_days_is_stale_even_if_a_policy_says_so():
    policy = Policy()
    reckless = ClassifyContext(replace(policy, stale=replace(policy.stale, disable_after_days=7)), NOW)
    assert stale(device(approximate_last_sign_in_date_time=days_ago(20)), reckless) is None
    assert stale(device(approximate_last_sign_in_date_time=days_ago(22)), reckless)["threshold_days"] == 21


def test_naive_timestamps_are_read_as_utc():
    naive = days_ago(100).replace(tzinfo=None)
    assert stale(device(approximate_last_sign_in_date_time=naive), CTX)["days_since_sign_in"] == 100


# --------------------------------------------------------------------------- no_signin_record


def test_no_signin_record_needs_an_old_registration():
    evidence = no_signin_record(device(approximate_last_sign_in_date_time=None, registration_date_time=days_ago(200)), CTX)
    assert evidence["days_since_registration"] == 200 and evidence["threshold_days"] == 90
    assert no_signin_record(device(approximate_last_sign_in_date_time=None, registration_date_time=days_ago(30)), CTX) is None
    assert no_signin_record(device(approximate_last_sign_in_date_time=None, registration_date_time=None), CTX) is None
    assert no_signin_record(device(registration_date_time=days_ago(200)), CTX) is None  # has a sign-in


# --------------------------------------------------------------------------- unmanaged


def test_unmanaged_is_an_enabled_entra_joined_windows_device_not_managed():
    assert unmanaged(device(is_managed=False), CTX)["is_managed"] is False
    assert unmanaged(device(is_managed=None), CTX)["check"].startswith("joined but not enrolled in MDM")
    assert unmanaged(device(is_managed=True), CTX) is None
    assert unmanaged(device(is_managed=False, trust_type="Workplace"), CTX) is None
    assert unmanaged(hybrid(is_managed=False), CTX) is None
    assert unmanaged(device(is_managed=False, operating_system="iOS"), CTX) is None
    assert unmanaged(device(is_managed=False, operating_system=None), CTX) is None
    assert unmanaged(device(is_managed=False, account_enabled=False), CTX) is None


# --------------------------------------------------------------------------- context


def test_context_refuses_a_naive_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        ClassifyContext(Policy(), NOW.replace(tzinfo=None))


def test_rules_are_registered_in_the_documented_order():
    from shared.classify import RULES

    assert [spec.device_class for spec in RULES] == list(DeviceClass)[:-1]
    assert [spec.check.__name__ for spec in RULES] == [c.value for c in list(DeviceClass)[:-1]]
