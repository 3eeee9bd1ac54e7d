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
    hardware_identity,
    has_x509_key,
    is_pending,
    no_signin_record,
    pending,
    protected,
    reactivated,
    registration_unclear,
    siblings_of,
    stale,
    sync_carries,
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


@pytest.mark.parametrize("profile", ["Printer", "SecureVM", "Shared", "IoT", "printer"])
def test_special_purpose_profiles_are_protected_with_where_to_manage_them(profile):
    evidence = protected(device(profile_type=profile, approximate_last_sign_in_date_time=days_ago(400)), CTX)
    assert evidence is not None and evidence["reasons"] == ["special_purpose"]
    assert evidence["profile_type"] == profile and evidence["manage_in"]
    assert protected(device(profile_type="RegisteredDevice"), CTX) is None


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


def test_keys_that_are_not_x509_make_registration_unclear_not_pending():
    """Used to be pending (and deletable with pending.action delete); Microsoft's pending has no keys at all."""
    for ids in ([AlternativeSecurityId(type=2, key="@@not-base64@@")], [AlternativeSecurityId(type=2, key=key_of("SHA1:x"))]):
        d = hybrid(alternative_security_ids=ids, approximate_last_sign_in_date_time=days_ago(2))
        assert not is_pending(d) and pending(d, CTX) is None
        assert registration_unclear(d, CTX)["alternative_security_ids"] == 1
    mixed = [AlternativeSecurityId(type=2, key="@@"), X509]
    assert not is_pending(hybrid(alternative_security_ids=mixed))
    assert registration_unclear(hybrid(alternative_security_ids=mixed), CTX) is None
    assert registration_unclear(device(alternative_security_ids=[AlternativeSecurityId(type=2, key="@@")]), CTX) is None


def test_pending_needs_a_synced_object():
    """Pending devices guidance: Entra Connect synced the computer; an unsynced ServerAd object is not pending."""
    for sync in (False, None):
        d = hybrid(alternative_security_ids=[], on_premises_sync_enabled=sync, registration_date_time=None)
        assert not is_pending(d) and pending(d, CTX) is None
    evidence = pending(hybrid(alternative_security_ids=[], registration_date_time=None, profile_type="RegisteredDevice"), CTX)
    assert evidence["registration_date_null"] is True and evidence["profile_type"] == "RegisteredDevice"
    assert evidence["on_premises_sync_enabled"] is True


def test_only_hybrid_devices_can_be_pending():
    assert pending(device(alternative_security_ids=[]), CTX) is None  # AzureAd without a key
    assert pending(device(trust_type="Workplace", alternative_security_ids=[]), CTX) is None
    assert pending(device(trust_type=None, alternative_security_ids=[]), CTX) is None
    assert pending(hybrid(), CTX) is None  # registered


# --------------------------------------------------------------------------- expired_disabled


def test_disabled_by_us_long_enough_ago_is_expired():
    d = device(account_enabled=False, extension_attributes=tagged(31), approximate_last_sign_in_date_time=days_ago(150))
    evidence = expired_disabled(d, CTX)
    assert evidence["disabled_days"] == 31 and evidence["delete_after_disabled_days"] == 30
    assert evidence["attribute"] == "extensionAttribute15" and evidence["disabled_reason"] == "stale"


def test_expiry_boundary_and_future_tags():
    old = {"approximate_last_sign_in_date_time": days_ago(200)}
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(30), **old), CTX) is not None
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(29.9), **old), CTX) is None
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(-3), **old), CTX) is None


def test_not_expired_without_our_disabled_tag():
    assert expired_disabled(device(account_enabled=True, extension_attributes=tagged(100)), CTX) is None
    assert expired_disabled(device(account_enabled=None, extension_attributes=tagged(100)), CTX) is None
    assert expired_disabled(device(account_enabled=False, extension_attributes=tagged(100, action="tagged")), CTX) is None
    foreign = ExtensionAttributes(extension_attribute15="CostCenter 42")
    assert expired_disabled(device(account_enabled=False, extension_attributes=foreign), CTX) is None
    assert expired_disabled(device(account_enabled=False, extension_attributes=None), CTX) is None


def test_a_tag_older_than_the_last_sign_in_does_not_start_the_grace_period():
    """Re-enabled by the helpdesk, used, disabled again by someone else: the old tag must not count."""
    used_after = device(account_enabled=False, extension_attributes=tagged(200), approximate_last_sign_in_date_time=days_ago(50))
    assert expired_disabled(used_after, CTX) is None
    assert reactivated(used_after, CTX)["signed_in_after_tag"] is True
    silent = device(account_enabled=False, extension_attributes=tagged(200), approximate_last_sign_in_date_time=days_ago(300))
    assert expired_disabled(silent, CTX) is not None and reactivated(silent, CTX) is None


def test_the_tag_is_read_from_the_policy_attribute():
    d = device(account_enabled=False, extension_attributes=tagged(60, attribute=3),
               approximate_last_sign_in_date_time=days_ago(99))
    assert expired_disabled(d, CTX) is None
    assert expired_disabled(d, ctx_for("tag:\n  attribute: 3\n"))["attribute"] == "extensionAttribute3"


# --------------------------------------------------------------------------- reactivated


def test_reactivated_when_enabled_again_or_signed_in_after_our_tag():
    enabled = device(account_enabled=True, extension_attributes=tagged(40), approximate_last_sign_in_date_time=days_ago(100))
    assert reactivated(enabled, CTX)["enabled_again"] is True
    used = device(operating_system="iOS", extension_attributes=tagged(40, action="tagged"),
                  approximate_last_sign_in_date_time=days_ago(3))
    assert reactivated(used, CTX)["signed_in_after_tag"] is True
    still_silent = device(operating_system="iOS", extension_attributes=tagged(40, action="tagged"),
                          approximate_last_sign_in_date_time=days_ago(100))
    assert reactivated(still_silent, CTX) is None
    assert reactivated(device(extension_attributes=ExtensionAttributes(extension_attribute15="CostCenter 42")), CTX) is None


# --------------------------------------------------------------------------- duplicate

HW = "[HWID]:h:90001"


def test_hardware_identity_prefers_hwid_then_user_hwid_and_ignores_other_tags():
    assert hardware_identity(device(physical_ids=["[GID]:g:1", "[USER-HWID]:u:2", "[HWID]:h:3"])) == "[HWID]:h:3"
    assert hardware_identity(device(physical_ids=["[GID]:g:1", "[user-hwid]:u:2"])) == "[user-hwid]:u:2"
    assert hardware_identity(device(physical_ids=["[GID]:g:1", "[ZTDID]:z"])) is None


def test_a_rejoin_of_the_same_hardware_makes_the_old_object_the_duplicate():
    old = device(physical_ids=[HW], approximate_last_sign_in_date_time=days_ago(40), registration_date_time=days_ago(500))
    new = device(physical_ids=[HW], approximate_last_sign_in_date_time=days_ago(2), registration_date_time=days_ago(35))
    ctx = ctx_for(fleet=[old, new])
    evidence = duplicate(old, ctx)
    assert evidence["newer_object_id"] == new.id and evidence["hardware_identity"] == HW
    assert evidence["newer_registered"] == days_ago(35).isoformat().replace("+00:00", "Z")
    assert duplicate(new, ctx) is None


def test_a_shared_name_alone_never_makes_a_duplicate():
    """The hostile case: a new device named after a colleague's active PC; two iPhones named "iPhone"."""
    colleague = device(display_name="FIN-LAPTOP-7", approximate_last_sign_in_date_time=days_ago(2),
                       registration_date_time=days_ago(900))
    impostor = device(display_name="FIN-LAPTOP-7", approximate_last_sign_in_date_time=days_ago(1),
                      registration_date_time=days_ago(1))
    phones = [device(display_name="iPhone", operating_system="iOS", trust_type="Workplace",
                     approximate_last_sign_in_date_time=days_ago(days), registration_date_time=days_ago(days + 1))
              for days in (40, 5)]
    ctx = ctx_for(fleet=[colleague, impostor, *phones])
    assert all(duplicate(d, ctx) is None for d in (colleague, impostor, *phones))


def test_the_old_object_must_be_silent_long_enough_and_before_the_new_registration():
    recent = device(physical_ids=[HW], approximate_last_sign_in_date_time=days_ago(25), registration_date_time=days_ago(400))
    new = device(physical_ids=[HW], registration_date_time=days_ago(20))
    assert duplicate(recent, ctx_for(fleet=[recent, new])) is None  # 25 days < 30
    assert duplicate(recent, ctx_for("duplicate:\n  min_inactive_days: 21\n", fleet=[recent, new])) is not None
    overlap = device(physical_ids=[HW], approximate_last_sign_in_date_time=days_ago(40), registration_date_time=days_ago(400))
    earlier_new = device(physical_ids=[HW], registration_date_time=days_ago(60))  # both were in use at once
    assert duplicate(overlap, ctx_for(fleet=[overlap, earlier_new])) is None


def test_the_inactivity_floor_is_21_days_whatever_the_policy():
    policy = Policy()
    old = device(physical_ids=[HW], approximate_last_sign_in_date_time=days_ago(10))
    new = device(physical_ids=[HW], registration_date_time=days_ago(5))
    reckless = ClassifyContext(replace(policy, duplicate=replace(policy.duplicate, min_inactive_days=3)), NOW,
                               siblings=siblings_of([old, new]))
    assert reckless.duplicate_inactive_days() == 21 and duplicate(old, reckless) is None


def test_same_hardware_other_trust_type_is_not_a_duplicate():
    joined = device(physical_ids=[HW], approximate_last_sign_in_date_time=days_ago(40))
    registered = device(physical_ids=[HW], trust_type="Workplace", registration_date_time=days_ago(10))
    assert duplicate(joined, ctx_for(fleet=[joined, registered])) is None


def test_blank_timestamps_disabled_newer_objects_and_no_hardware_id_are_never_duplicates():
    blank = device(physical_ids=[HW], approximate_last_sign_in_date_time=None)
    old = device(physical_ids=[HW], approximate_last_sign_in_date_time=days_ago(60))
    disabled_newer = device(physical_ids=[HW], account_enabled=False, registration_date_time=days_ago(10))
    ctx = ctx_for(fleet=[blank, old, disabled_newer])
    assert duplicate(blank, ctx) is None  # no timestamp: cannot be judged
    assert duplicate(old, ctx) is None  # the only newer object is disabled: not the live one
    bare_old = device(physical_ids=["[GID]:g:1"], approximate_last_sign_in_date_time=days_ago(60))
    bare_new = device(physical_ids=["[GID]:g:1"], registration_date_time=days_ago(10))
    assert duplicate(bare_old, ctx_for(fleet=[bare_old, bare_new])) is None  # no hardware identity
    assert duplicate(old, CTX) is None  # no fleet view


# --------------------------------------------------------------------------- hybrid: which side can change it


def test_sync_carries_only_synced_windows_10_and_later_hybrid_objects():
    assert sync_carries(hybrid())
    assert not sync_carries(hybrid(on_premises_sync_enabled=False))
    assert not sync_carries(hybrid(on_premises_sync_enabled=None))
    assert not sync_carries(hybrid(operating_system_version="6.3.9600"))
    assert not sync_carries(hybrid(operating_system_version="6.1.7601"))
    assert not sync_carries(device())


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


def test_platform_overrides_match_every_name_of_the_family():
    """iPads report IPad, Intune Macs MacMDM, Android Enterprise AndroidEnterprise: one override covers them."""
    ctx = ctx_for("stale:\n  platforms:\n    iOS: 180\n    macOS: 200\n    android: 150\n")
    for os_name in ("IOS", "iOS", "IPad", "iPadOS"):
        assert stale(device(operating_system=os_name, approximate_last_sign_in_date_time=days_ago(120)), ctx) is None
    ipad = device(operating_system="iPadOS", approximate_last_sign_in_date_time=days_ago(181))
    assert stale(ipad, ctx)["threshold_days"] == 180
    for os_name, days in (("MacMDM", 190), ("macOS", 190), ("AndroidForWork", 140), ("AndroidEnterprise", 140)):
        assert stale(device(operating_system=os_name, approximate_last_sign_in_date_time=days_ago(days)), ctx) is None
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
