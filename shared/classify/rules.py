"""The seven classification rules, one pure function each, in the order they are tried.

Each takes a device and a ClassifyContext and returns the evidence (a JSON-ready dict) when it matches,
else None. `RULES` is the ordered registry `classify()` walks; the first match wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared import tags
from shared.classify.model import ClassifyContext, DeviceClass, MappingSiblings, as_utc, newest_index
from shared.classify.registration import HYBRID_TRUST_TYPE, is_pending
from shared.models import Device

Evidence = dict[str, Any]
AUTOPILOT_PREFIX = "[ZTDID]"
_ZTDID = re.compile(re.escape(AUTOPILOT_PREFIX), re.IGNORECASE)
JOINED_TRUST_TYPE = "AzureAd"
MDM_CHECK = (
    "joined but not enrolled in MDM: check automatic MDM enrollment (Intune > Devices > Enrollment > "
    "Windows > Automatic Enrollment: MDM user scope covers the user) and the Intune licence"
)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value is not None else None


def is_windows(device: Device) -> bool:
    """Windows (any edition); everything else is a platform an app identity cannot disable."""
    return (device.operating_system or "").strip().lower().startswith("windows")


def is_hybrid(device: Device) -> bool:
    return device.trust_type == HYBRID_TRUST_TYPE


# --------------------------------------------------------------------------- 1. protected


def autopilot_id(device: Device) -> str | None:
    """The `[ZTDID]:...` entry of physicalIds (any case), or None."""
    for physical_id in device.physical_ids:
        if _ZTDID.match(physical_id):
            return physical_id
    return None


def protected(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Autopilot ([ZTDID] in physicalIds), a protect.name_patterns match, or a protect.groups member."""
    ztdid = autopilot_id(device)
    pattern = ctx.name_pattern(device.display_name)
    in_group = device.id in ctx.protected_ids
    if ztdid is None and pattern is None and not in_group:
        return None
    evidence: Evidence = {}
    reasons: list[str] = []
    if ztdid is not None:
        reasons.append("autopilot")
        evidence["ztdid"] = ztdid
    if pattern is not None:
        reasons.append("name_pattern")
        evidence["name_pattern"] = pattern
    if in_group:
        reasons.append("group")
    evidence["reasons"] = reasons
    return evidence


# --------------------------------------------------------------------------- 2. pending


def pending(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Hybrid device that never finished registering; `stuck` once older than pending.stuck_after_days.

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
        "alternative_security_ids": len(device.alternative_security_ids),
        "registered": _iso(device.registration_date_time),
        "last_synced": _iso(device.on_premises_last_sync_date_time),
        "age_days": age,
        "age_from": source if since is not None else None,
        "stuck": since is not None and as_utc(since) < ctx.now - timedelta(days=stuck_after),
        "stuck_after_days": stuck_after,
        "on_premises_security_identifier": device.on_premises_security_identifier,
    }


# --------------------------------------------------------------------------- 3. expired_disabled


def expired_disabled(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Disabled by entra-janitor (its tag) at least stale.delete_after_disabled_days ago: delete candidate."""
    if device.account_enabled is not False or device.extension_attributes is None:
        return None
    attribute = ctx.policy.tag.attribute
    raw = device.extension_attributes.get(attribute)
    tag = tags.parse(raw)
    if tag is None or tag.action != "disabled":
        return None
    days = ctx.days_before_now(tag.at)
    wait = ctx.policy.stale.delete_after_disabled_days
    if days < wait:
        return None
    return {
        "attribute": f"extensionAttribute{attribute}",
        "tag": raw,
        "disabled_at": _iso(tag.at),
        "disabled_days": days,
        "disabled_reason": tag.reason,
        "disabled_run_id": tag.run_id,
        "delete_after_disabled_days": wait,
    }


# --------------------------------------------------------------------------- 4. duplicate


def duplicate_key(device: Device) -> str | None:
    """Objects sharing this key are the same machine joined more than once: displayName + trustType."""
    if not device.display_name or not device.trust_type:
        return None
    return f"{device.display_name}\x1f{device.trust_type}"


def sibling_sign_in(device: Device) -> datetime | None:
    """The sign-in a device contributes to its key's newest, or None when it cannot count as the newer one.

    Only enabled objects with a timestamp count: a disabled or never-seen object is not the live one.
    """
    if device.account_enabled is not True or device.approximate_last_sign_in_date_time is None:
        return None
    return as_utc(device.approximate_last_sign_in_date_time)


def siblings_of(devices: Iterable[Device]) -> MappingSiblings:
    """The duplicate rule's fleet view over devices held in memory (small fleets, tests, tickets)."""
    return MappingSiblings(newest_index((duplicate_key(d), sibling_sign_in(d), d.id) for d in devices))


def duplicate(device: Device, ctx: ClassifyContext) -> Evidence | None:
    """Another object with the same key signed in strictly more recently: this older one is the candidate.

    Equal timestamps are not "more recent", so the newest object (or objects tied for newest) never match.
    A device without a sign-in timestamp is never judged older (FACTS: some active devices have none).
    """
    if ctx.siblings is None:
        return None
    mine = sibling_sign_in(device)
    key = duplicate_key(device)
    if mine is None or key is None:
        return None
    newest = ctx.siblings.newest(key)
    if newest is None or newest.object_id == device.id or not newest.last_sign_in > mine:
        return None
    return {
        "display_name": device.display_name,
        "trust_type": device.trust_type,
        "last_sign_in": _iso(mine),
        "newer_object_id": newest.object_id,
        "newer_last_sign_in": _iso(newest.last_sign_in),
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
    if not is_windows(device):
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
    RuleSpec(DeviceClass.PENDING, pending),
    RuleSpec(DeviceClass.EXPIRED_DISABLED, expired_disabled),
    RuleSpec(DeviceClass.DUPLICATE, duplicate, fleet=True),
    RuleSpec(DeviceClass.STALE, stale),
    RuleSpec(DeviceClass.NO_SIGNIN_RECORD, no_signin_record),
    RuleSpec(DeviceClass.UNMANAGED, unmanaged),
)
