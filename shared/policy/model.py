"""The policy object: what an administrator decided, as frozen typed records.

Every field has a safe default (report mode, conservative thresholds, nothing deleted without opt-in), so
`Policy()` is the effective policy when no file is given. The JSON Schema shipped next to this module
(`policy.schema.json`) describes the same keys for editors and for validation; a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec

from shared.platforms import family
from shared.tags import DEFAULT_ATTRIBUTE

Mode = Literal["report", "enforce"]
NonWindowsAction = Literal["tag", "delete"]
PendingAction = Literal["notify", "delete"]

#: Floors the loader refuses to go below (approximateLastSignInDateTime is only rewritten every ~14 days).
MIN_DISABLE_AFTER_DAYS = 30
MIN_DELETE_AFTER_DISABLED_DAYS = 14
#: A duplicate's older object must have been silent at least this long (Microsoft Learn, "Manage stale
#: devices": the sign-in timestamp moves only every ~14 (+/-5) days, so nothing younger than 21 days counts).
MIN_DUPLICATE_INACTIVE_DAYS = 21


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every policy section: immutable, and unknown keys are an error.

    msgspec passes these options on to subclasses; each section repeats `frozen=True` so type checkers
    (dataclass_transform, which does not inherit it) know the sections are immutable too.
    """


class StalePolicy(_Section, frozen=True):
    disable_after_days: int = 90
    delete_after_disabled_days: int = 30
    #: Per-platform-family overrides of disable_after_days (shared/platforms.py; names case-insensitive).
    platforms: dict[str, int] = {}
    #: App-only identities cannot disable non-Windows devices: tag them (and notify), or delete them.
    non_windows_action: NonWindowsAction = "tag"

    def disable_after_days_for(self, operating_system: str | None) -> int:
        """The stale threshold for a device's platform family: its override, else disable_after_days."""
        if self.platforms:
            wanted = family(operating_system)
            for name, days in self.platforms.items():
                if name.strip().lower() == wanted:
                    return days
        return self.disable_after_days


class DuplicatePolicy(_Section, frozen=True):
    #: The older object of a re-joined machine must not have signed in for this many days (floor 21).
    min_inactive_days: int = 30


class PendingPolicy(_Section, frozen=True):
    stuck_after_days: int = 14
    #: notify: tell the on-prem owners how to fix it; delete (opt-in): delete the Entra object once.
    action: PendingAction = "notify"


class ProtectPolicy(_Section, frozen=True):
    autopilot: bool = True  # cannot be turned off
    name_patterns: tuple[str, ...] = ()  # globs on displayName, case-insensitive
    groups: tuple[str, ...] = ()  # group object ids; their (transitive) member devices are never touched


class LimitsPolicy(_Section, frozen=True):
    max_destructive_per_run: int = 500
    max_destructive_fraction: float = 0.05  # of devices scanned
    max_destructive_per_day: int = 1000  # across all runs and workers (the worker defers past it)


class GatesPolicy(_Section, frozen=True):
    allow_delete_with_bitlocker_keys: bool = False
    intune_active_days: int = 30  # an Intune sync this recent blocks tag, disable and delete
    allow_delete_with_laps: bool = False  # a Windows LAPS password stored on the object blocks a delete


class TagPolicy(_Section, frozen=True):
    attribute: int = DEFAULT_ATTRIBUTE  # extensionAttribute<N> carries the disable tag


class NotifyPolicy(_Section, frozen=True):
    owners: bool = True  # mail the device's registered owners
    admins: tuple[str, ...] = ()  # mail addresses: breaker halts, digests, on-prem guidance
    digest: bool = True  # one message per recipient per run instead of one per device


class KeepPolicy(_Section, frozen=True):
    """The owner's keep link (issue 14): Microsoft's stale-device guidance warns about users on leave."""

    #: How long the link in an owner notice works (days). The default matches the delete grace period: the link
    #: is good while the device can still be brought back by a re-enable.
    link_days: int = 30
    #: How long a kept device is treated as protected (class `kept`): no tag, disable or delete until then.
    days: int = 60


class Policy(_Section, frozen=True):
    """The effective policy. Build it with `load_policy()`; `Policy()` is the safe default."""

    mode: Mode = "report"
    stale: StalePolicy = StalePolicy()
    duplicate: DuplicatePolicy = DuplicatePolicy()
    pending: PendingPolicy = PendingPolicy()
    protect: ProtectPolicy = ProtectPolicy()
    limits: LimitsPolicy = LimitsPolicy()
    gates: GatesPolicy = GatesPolicy()
    tag: TagPolicy = TagPolicy()
    notify: NotifyPolicy = NotifyPolicy()
    keep: KeepPolicy = KeepPolicy()

    @property
    def enforce(self) -> bool:
        """True only when the policy explicitly says `mode: enforce`."""
        return self.mode == "enforce"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (lists, dicts, scalars) in declaration order: for `policy show` and the audit log."""
        return msgspec.json.decode(msgspec.json.encode(self))


def policy_hash(policy: Policy) -> str:
    """Short, stable fingerprint of the effective policy (same settings, same hash; key order ignored).

    Commands and run records carry it, so every decision can be traced to the policy that proposed it.
    """
    canonical = msgspec.json.encode(policy, order="sorted")
    return hashlib.sha256(canonical).hexdigest()[:16]
