"""Records of classification: the classes, a finding, and the context the rules read.

Everything here is pure data: rules take a device and a context and return evidence, never do I/O. `now`
comes in through the context so a decision can be replayed exactly.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from shared.policy import Policy

_DAY = timedelta(days=1)
#: Never treat a sign-in younger than this as stale: Graph rewrites the timestamp only every ~14 (+/-5) days.
MIN_STALE_DAYS = 21


class DeviceClass(StrEnum):
    """Classes in rule order (first match wins); `healthy` is what matches none."""

    PROTECTED = "protected"
    KEPT = "kept"
    PENDING = "pending"
    REGISTRATION_UNCLEAR = "registration_unclear"
    REACTIVATED = "reactivated"
    EXPIRED_DISABLED = "expired_disabled"
    DUPLICATE = "duplicate"
    STALE = "stale"
    NO_SIGNIN_RECORD = "no_signin_record"
    UNMANAGED = "unmanaged"
    HEALTHY = "healthy"


#: Every class name, in rule order, `healthy` last (the keys of a run's `findings`).
CLASS_NAMES: tuple[str, ...] = tuple(c.value for c in DeviceClass)
#: Classes that get a remediation command (all but healthy, protected and kept).
CANDIDATE_CLASSES: frozenset[DeviceClass] = frozenset(DeviceClass) - {
    DeviceClass.HEALTHY,
    DeviceClass.PROTECTED,
    DeviceClass.KEPT,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """A device's class and the evidence that made it match (JSON-ready values)."""

    device_class: DeviceClass
    evidence: Mapping[str, Any] = field(default_factory=dict[str, Any])

    @property
    def candidate(self) -> bool:
        """Every class except healthy, protected and kept gets a remediation command."""
        return self.device_class in CANDIDATE_CLASSES


HEALTHY = Finding(DeviceClass.HEALTHY)


@dataclass(frozen=True, slots=True)
class Newest:
    """The most recent registration among the live objects that share a hardware identity, and whose it is."""

    registered: datetime
    object_id: str


class SiblingIndex(Protocol):
    """Fleet-wide view the duplicate rule needs: newest registration per (hardware identity, trustType) key."""

    def newest(self, key: str) -> Newest | None: ...


class MappingSiblings:
    """A SiblingIndex over an in-memory mapping (tests; the scan builds one per spill partition)."""

    __slots__ = ("_by_key",)

    def __init__(self, by_key: Mapping[str, Newest]) -> None:
        self._by_key = by_key

    def newest(self, key: str) -> Newest | None:
        return self._by_key.get(key)


def newest_index(entries: Iterable[tuple[str | None, datetime | None, str]]) -> dict[str, Newest]:
    """Newest registration per key from (key, registered, object id) entries; entries without one do not count.

    Ties keep the first seen: the duplicate rule needs the newer object registered strictly after the older
    one last signed in, so which of two tied objects is kept does not change any verdict.
    """
    newest: dict[str, Newest] = {}
    for key, registered, object_id in entries:
        if key is None or registered is None:
            continue
        best = newest.get(key)
        if best is None or registered > best.registered:
            newest[key] = Newest(registered, object_id)
    return newest


def as_utc(value: datetime) -> datetime:
    """Graph sends UTC with `Z`; a naive timestamp is read as UTC rather than crashing a comparison."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ClassifyContext:
    """What the rules need besides the device: the policy, the time, and the protected-group members.

    `protected_ids` are device object ids in `protect.groups`, fetched once per scan. `siblings` is the
    fleet view for the duplicate rule; without it the duplicate rule never matches. `kept` maps the object
    ids of devices their owners kept (the keep link) to when the keep ends, read from the audit log once per
    scan the way protected groups are read.
    """

    policy: Policy
    now: datetime
    protected_ids: frozenset[str] = frozenset()
    siblings: SiblingIndex | None = None
    kept: Mapping[str, datetime] = field(default_factory=dict[str, datetime])
    _name_match: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _cutoffs: dict[str, datetime] = field(init=False, repr=False, compare=False, default_factory=dict[str, datetime])

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("ClassifyContext.now must be timezone-aware (UTC), e.g. datetime.now(UTC)")
        patterns = self.policy.protect.name_patterns
        if patterns:
            joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
            object.__setattr__(self, "_name_match", re.compile(joined, re.IGNORECASE))

    def with_siblings(self, siblings: SiblingIndex | None) -> ClassifyContext:
        """The same context with another fleet view (the scan resolves duplicates per partition)."""
        return ClassifyContext(self.policy, self.now, self.protected_ids, siblings, self.kept)

    def name_pattern(self, display_name: str | None) -> str | None:
        """The first protect.name_patterns glob that matches, or None."""
        if self._name_match is None or not display_name:
            return None
        if not self._name_match.match(display_name):
            return None
        return next(p for p in self.policy.protect.name_patterns if fnmatch.fnmatchcase(display_name.lower(), p.lower()))

    def duplicate_inactive_days(self) -> int:
        """How long a duplicate's older object must have been silent, never below MIN_STALE_DAYS."""
        return max(self.policy.duplicate.min_inactive_days, MIN_STALE_DAYS)

    def stale_days(self, operating_system: str | None) -> int:
        """Stale threshold for a platform, never below MIN_STALE_DAYS."""
        return max(self.policy.stale.disable_after_days_for(operating_system), MIN_STALE_DAYS)

    def stale_cutoff(self, operating_system: str | None) -> datetime:
        """Sign-ins (or registrations) before this instant are older than the platform's threshold.

        Cached by the raw operatingSystem value: a fleet has a handful, so the family is worked out once each.
        """
        key = operating_system or ""
        cutoff = self._cutoffs.get(key)
        if cutoff is None:
            cutoff = self.now - timedelta(days=self.stale_days(operating_system))
            self._cutoffs[key] = cutoff
        return cutoff

    def days_before_now(self, value: datetime) -> int:
        """Whole days from `value` to now (negative for a timestamp in the future)."""
        return (self.now - as_utc(value)) // _DAY
