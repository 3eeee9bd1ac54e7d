"""The classification rules, one pure function each, in the order they are tried.

Each takes a device and a ClassifyContext and returns the evidence (a JSON-ready dict) when it matches,
else None. `RULES` is the ordered registry `classify()` walks; the first match wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from shared import tags
from shared.classify.model import ClassifyContext, DeviceClass, MappingSiblings, as_utc, newest_index
from shared.classify.registration import is_pending, is_registration_unclear
from shared.models import Device
from shared.platforms import is_windows

Evidence = dict[str, Any]
AUTOPILOT_PREFIX = "[ZTDID]"
_ZTDID_LENGTH = len(AUTOPILOT_PREFIX)
JOINED_TRUST_TYPE = "AzureAd"
MDM_CHECK = (
    "joined but not enrolled in MDM: check automatic MDM enrollment (Intune > Devices > Enrollment > "
    "Windows > Automatic Enrollment: MDM user scope covers the user) and the Intune licence"
)
#: Special-purpose device objects (Graph device.profileType) and where each is managed instead. Microsoft
#: Learn, "Manage stale devices in Microsoft Entra ID": Universal Print printers are cleaned up in Universal
#: Print, not as stale devices; the other profile types belong to the service that registered them.
SPECIAL_PROFILES: dict[str, str] = {
    "printer": "Universal Print (Azure portal > Universal Print > Printers)",
    "securevm": "the Azure virtual machine it belongs to (Azure portal; Entra login for VMs)",
    "shared": "the shared-device service that registered it (Intune shared device mode or Teams Rooms)",
    "iot": "the IoT service that registered it (Azure IoT / Windows IoT device management)",
}
#: Hardware identity entries of physicalIds, in order of preference (FACTS: [HWID] / [USER-HWID]).
_HWID, _USER_HWID = "[HWID]", "[USER-HWID]"


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value is not None else None


def _our_tag(device: Device, ctx: ClassifyContext) -> tuple[str | None, tags.Tag | None]:
    """(raw value of the tag attribute, our parsed tag or None)."""
    if device.extension_attributes is None:
        return None, None
    raw = device.extension_attributes.get(ctx.policy.tag.attribute)
    return raw, tags.parse(raw)


def _signed_in_after(device: Device, moment: datetime) -> bool:
    signed_in = device.approximate_last_sign_in_date_time
    return signed_in is not None and as_utc(signed_in) > moment


# --------------------------------------------------------------------------- 1. protected


def autopilot_id(device: Device) -> str | None:
    """The `[ZTDID]:...` entry of physicalIds (any case), or None."""
    for physical_id in device.physical_ids:
        if physical_id[:_ZTDID_LENGTH].upper() == AUTOPILOT_PREFIX:
            return physical_id
    return None


def special_profile(device: Device) -> str | None:
    """Where a special-purpose object (profileType Printer, SecureVM, Shared, IoT) is managed, or None."""
    return _manage_in(device.profile_type)


@cache
def _manage_in(profile_type: str | None) -> str | None:
    """By raw profileType value (a fleet has a handful): the lookup every device's protection check makes."""
    return SPECIAL_PROFILES.get((profile_type or "").strip().lower())


def protected(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Autopilot, a special-purpose profile, a protect.name_patterns match, or a protect.groups member.

    Autopilot: Microsoft Learn, "Manage stale devices": never delete Autopilot devices (the object is the
    link re-provisioning needs). Special profiles: the same page sends them to their own admin portals.
    """
    ztdid = autopilot_id(device)
    manage_in = special_profile(device)
    pattern = ctx.name_pattern(device.display_name)
    in_group = device.id in ctx.protected_ids
    if ztdid is None and manage_in is None and pattern is None and not in_group:
        return None
    evidence: Evidence = {}
    reasons: list[str] = []
    if ztdid is not None:
        reasons.append("autopilot")
        evidence["ztdid"] = ztdid
    if manage_in is not None:
        reasons.append("special_purpose")
        evidence["profile_type"] = device.profile_type
        evidence["manage_in"] = manage_in
    if pattern is not None:
        reasons.append("name_pattern")
        evidence["name_pattern"] = pattern
    if in_group:
        reasons.append("group")
    evidence["reasons"] = reasons
    return evidence


# --------------------------------------------------------------------------- 1b. kept


def kept(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Its owner kept it with the link in a notice (issue 14), and the keep has not ended: protected until then.

    Microsoft Learn, "Manage stale devices in Microsoft Entra ID", warns that a stale timestamp can mean a
    user on leave rather than an unused device; the owner's word holds for `keep.days`, and nothing is
    written to the device meanwhile (no tag, disable or delete).
    """
    until = ctx.kept.get(device.id)
    if until is None or not as_utc(until) > ctx.now:
        return None
    return {"kept_until": _iso(until), "days_left": (as_utc(until) - ctx.now).days, "reasons": ["kept_by_owner"]}


# --------------------------------------------------------------------------- 2. pending


def pending(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Synced hybrid object that never registered (registration.is_pending); `stuck` once older than the policy.

    Age runs from registrationDateTime, which is null on most pending objects; then from
    onPremisesLastSyncDateTime (when Entra Connect last wrote the computer object). With neither the age is
    unknown and the device is only reported, never treated as stuck.
    """
    if not is_pending(device):
        return None
    since, source = device.registration_date_time, "registrationDateTime"
    if since is None:
        since, source = device.on_premises_last_sync_date_time, "onPremisesLastSyncDateTime"
    age = ctx.days_before_now(since) if since is not None else None
    stuck_after = ctx.policy.pending.stuck_after_days
    return {
        "trust_type": device.trust_type,
        "on_premises_sync_enabled": device.on_premises_sync_enabled,
        "alternative_security_ids": len(device.alternative_security_ids),
        "registered": _iso(device.registration_date_time),
        "registration_date_null": device.registration_date_time is None,
        "profile_type": device.profile_type,
        "last_synced": _iso(device.on_premises_last_sync_date_time),
        "age_days": age,
        "age_from": source if since is not None else None,
        "stuck": since is not None and as_utc(since) < ctx.now - timedelta(days=stuck_after),
        "stuck_after_days": stuck_after,
        "on_premises_security_identifier": device.on_premises_security_identifier,
    }


def registration_unclear(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """ServerAd object with keys, none of them X509: not pending by Microsoft's definition; report only."""
    if not is_registration_unclear(device):
        return None
    return {
        "trust_type": device.trust_type,
        "alternative_security_ids": len(device.alternative_security_ids),
        "on_premises_sync_enabled": device.on_premises_sync_enabled,
        "check": "run dsregcmd /status on the device: a hybrid join shows AzureAdJoined YES and a DeviceId",
    }


# --------------------------------------------------------------------------- 3. reactivated


def reactivated(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Our tag on a device in use again: it signed in after the tag, or a `disabled` tag on an enabled device.

    The tag would otherwise start (or continue) a grace period that ends in a delete; the device gets the
    tag cleared instead (Microsoft Learn, "Manage stale devices": a device that signs in is not stale).
    """
    raw, tag = _our_tag(device, ctx)
    if tag is None:
        return None
    signed_in_since = _signed_in_after(device, tag.at)
    enabled_again = tag.action == "disabled" and device.account_enabled is True
    if not signed_in_since and not enabled_again:
        return None
    return {
        "attribute": f"extensionAttribute{ctx.policy.tag.attribute}",
        "tag": raw,
        "tagged_at": _iso(tag.at),
        "last_sign_in": _iso(device.approximate_last_sign_in_date_time),
        "signed_in_after_tag": signed_in_since,
        "enabled_again": enabled_again,
    }


# --------------------------------------------------------------------------- 4. expired_disabled


def expired_disabled(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Disabled by entra-janitor (its tag, dated after the last sign-in) at least delete_after_disabled_days ago.

    Microsoft Learn, "Manage stale devices": disable first, delete after a grace period. A tag older than
    the device's last sign-in does not count (the `reactivated` rule clears it).
    """
    if device.account_enabled is not False:
        return None
    raw, tag = _our_tag(device, ctx)
    if tag is None or tag.action != "disabled" or _signed_in_after(device, tag.at):
        return None
    days = ctx.days_before_now(tag.at)
    wait = ctx.policy.stale.delete_after_disabled_days
    if days < wait:
        return None
    return {
        "attribute": f"extensionAttribute{ctx.policy.tag.attribute}",
        "tag": raw,
        "disabled_at": _iso(tag.at),
        "disabled_days": days,
        "disabled_reason": tag.reason,
        "disabled_run_id": tag.run_id,
        "delete_after_disabled_days": wait,
    }


# --------------------------------------------------------------------------- 5. duplicate


def hardware_identity(device: Device) -> str | None:
    """The physicalIds entry that names the hardware: the first `[HWID]`, else the first `[USER-HWID]`.

    The one place the identity signal lives (FACTS: that a re-join keeps the value is unconfirmed). A
    displayName is never an identity: names are chosen on the device, and iOS 16+ reports "iPhone" for all.
    """
    user_hwid: str | None = None
    for physical_id in device.physical_ids:  # one pass: the scan asks this of every device
        head = physical_id[:11].upper()
        if head.startswith(_HWID):
            return physical_id
        if user_hwid is None and head == _USER_HWID:
            user_hwid = physical_id
    return user_hwid


def duplicate_key(device: Device) -> str | None:
    """Objects sharing this key are the same hardware registered more than once: hardware identity + trustType."""
    hardware = hardware_identity(device)
    if hardware is None or not device.trust_type:
        return None
    return f"{hardware}\x1f{device.trust_type}"


def sibling_registered(device: Device) -> datetime | None:
    """The registration a device contributes to its key's newest, or None when it cannot be the newer object.

    Only enabled objects with a registrationDateTime count: a disabled object is not the live one.
    """
    if device.account_enabled is not True or device.registration_date_time is None:
        return None
    return as_utc(device.registration_date_time)


def siblings_of(devices: Iterable[Device]) -> MappingSiblings:
    """The duplicate rule's fleet view over devices held in memory (small fleets, tests, tickets)."""
    return MappingSiblings(newest_index((duplicate_key(d), sibling_registered(d), d.id) for d in devices))


def may_be_older_duplicate(device: Device, ctx: ClassifyContext) -> bool:
    """The checks of the duplicate rule that need no fleet view: enabled, identified, silent long enough."""
    signed_in = device.approximate_last_sign_in_date_time
    if device.account_enabled is not True or signed_in is None:
        return False  # cheapest checks first: the scan asks this of every device
    return ctx.days_before_now(signed_in) >= ctx.duplicate_inactive_days() and duplicate_key(device) is not None


def duplicate(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """A newer object of the same hardware and trust type exists, and this one went silent before it came.

    Matches only when (1) another enabled object shares the hardware identity, (2) this object has not
    signed in for duplicate.min_inactive_days (never under 21: the timestamp moves every ~14 days), and
    (3) its last sign-in is before the newer object's registration. A device without a sign-in timestamp
    is never judged (some active devices have none). Sources: Microsoft Learn, "Manage stale devices"
    (approximateLastSignInDateTime granularity); physicalIds on the Graph device resource.
    """
    key = duplicate_key(device)
    signed_in = device.approximate_last_sign_in_date_time
    if ctx.siblings is None or key is None or signed_in is None or not may_be_older_duplicate(device, ctx):
        return None
    newest = ctx.siblings.newest(key)
    if newest is None or newest.object_id == device.id or not newest.registered > as_utc(signed_in):
        return None
    silent_days = ctx.days_before_now(signed_in)
    return {
        "hardware_identity": hardware_identity(device),
        "trust_type": device.trust_type,
        "last_sign_in": _iso(signed_in),
        "days_since_sign_in": silent_days,
        "min_inactive_days": ctx.duplicate_inactive_days(),
        "newer_object_id": newest.object_id,
        "newer_registered": _iso(newest.registered),
    }


# --------------------------------------------------------------------------- 5. stale


def stale(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Enabled, and last sign-in older than the platform's threshold (future timestamps are not stale)."""
    signed_in = device.approximate_last_sign_in_date_time
    if device.account_enabled is not True or signed_in is None:
        return None
    if not as_utc(signed_in) < ctx.stale_cutoff(device.operating_system):
        return None
    return {
        "last_sign_in": _iso(signed_in),
        "days_since_sign_in": ctx.days_before_now(signed_in),
        "threshold_days": ctx.stale_days(device.operating_system),
        "operating_system": device.operating_system,
        "trust_type": device.trust_type,
    }


# --------------------------------------------------------------------------- 6. no_signin_record


def no_signin_record(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """No sign-in timestamp at all, registered longer ago than the threshold (report-only)."""
    registered = device.registration_date_time
    if device.approximate_last_sign_in_date_time is not None or registered is None:
        return None
    if not as_utc(registered) < ctx.stale_cutoff(device.operating_system):
        return None
    return {
        "registered": _iso(registered),
        "days_since_registration": ctx.days_before_now(registered),
        "threshold_days": ctx.stale_days(device.operating_system),
        "account_enabled": device.account_enabled,
    }


# --------------------------------------------------------------------------- 7. unmanaged


def unmanaged(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Enabled Entra joined Windows device whose isManaged is not true: joined, never enrolled in MDM."""
    if device.account_enabled is not True or device.trust_type != JOINED_TRUST_TYPE or device.is_managed is True:
        return None
    if not is_windows(device.operating_system):
        return None
    return {"trust_type": device.trust_type, "is_managed": device.is_managed, "check": MDM_CHECK}


# --------------------------------------------------------------------------- registry

Rule = Callable[[Device, ClassifyContext], Evidence | None]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A named rule. `fleet` marks the one that needs the fleet-wide view (ctx.siblings)."""

    device_class: DeviceClass
    check: Rule
    fleet: bool = False


#: The rules in the order they are tried; the first match wins.
RULES: tuple[RuleSpec, ...] = (
    RuleSpec(DeviceClass.PROTECTED, protected),
    RuleSpec(DeviceClass.KEPT, kept),
    RuleSpec(DeviceClass.PENDING, pending),
    RuleSpec(DeviceClass.REGISTRATION_UNCLEAR, registration_unclear),
    RuleSpec(DeviceClass.REACTIVATED, reactivated),
    RuleSpec(DeviceClass.EXPIRED_DISABLED, expired_disabled),
    RuleSpec(DeviceClass.DUPLICATE, duplicate, fleet=True),
    RuleSpec(DeviceClass.STALE, stale),
    RuleSpec(DeviceClass.NO_SIGNIN_RECORD, no_signin_record),
    RuleSpec(DeviceClass.UNMANAGED, unmanaged),
)
