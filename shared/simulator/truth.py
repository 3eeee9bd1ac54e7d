"""Ground truth: the class and flags each generated device was built to have.

Computed from the generator's intent (which archetype it drew), never by classifying the JSON, so a test
that compares a classifier with it compares two independent readings of the rules. The truth describes
the fleet as generated, against `Tenant.reference_policy()` at `Tenant.now`; writes made later (disables,
deletes) do not change it.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

#: Classification order of the nightly scan; every device has exactly one.
CLASSES: tuple[str, ...] = (
    "protected",
    "pending",
    "expired_disabled",
    "duplicate",
    "stale",
    "no_signin_record",
    "unmanaged",
    "healthy",
)
CLASS_CODE: dict[str, int] = {name: code for code, name in enumerate(CLASSES)}

#: Facts about a device that tests may want to select on (bit positions are internal).
FLAGS: tuple[str, ...] = (
    "autopilot",  # [ZTDID] in physicalIds
    "hybrid",  # trustType ServerAd
    "pending",  # hybrid without an X509 alternativeSecurityId
    "pending_stuck",  # pending for longer than pending.stuck_after_days (14)
    "windows",
    "non_windows",
    "bitlocker",  # has BitLocker recovery keys
    "intune",  # has an Intune managed-device record
    "intune_recent",  # Intune lastSyncDateTime within 30 days
    "protected_group",  # transitive member of the protected group
    "protected_group_nested",  # ... through the nested group
    "protected_name",  # displayName matches KIOSK-*
    "signin_blank",  # approximateLastSignInDateTime null
    "signin_old",  # last sign-in older than the 90-day threshold
    "disabled",  # accountEnabled false
    "disabled_by_janitor",  # disabled, with entra-janitor's tag in extensionAttribute15
    "tagged_by_janitor",  # enabled, tagged (action "tagged") by entra-janitor
    "foreign_tag",  # extensionAttribute15 holds someone else's text
    "duplicate_older",  # an older object of a re-joined device (the duplicate candidate)
    "duplicate_newer",  # the newest object of a duplicate name
    "not_managed",  # isManaged is not true
    "has_owner",
    "owner_at_quota",  # owned by a user holding userDeviceQuota devices
    "lab_group",  # member of the (unprotected) lab group
    "edge_case",  # deliberately placed next to a threshold; see docs/simulator.md
    "future_signin",  # sign-in timestamp slightly in the future (clock skew)
    "recreated_by_sync",  # a pending object synced back after its predecessor was deleted
    "added",  # added by a test through Tenant.add_device
)
FLAG_BIT: dict[str, int] = {name: 1 << bit for bit, name in enumerate(FLAGS)}


def flag_mask(*names: str) -> int:
    mask = 0
    for name in names:
        mask |= FLAG_BIT[name]
    return mask


class GroundTruth:
    """Expected class and flags per device, addressed by object id."""

    def __init__(self, resolve: Callable[[str], int | None], object_id: Callable[[int], str]) -> None:
        self._resolve = resolve
        self._object_id = object_id
        self.codes = bytearray()
        self.flag_bits = array("I")
        self.archetypes: list[str] = []

    def record(self, cls: str, flags: int, archetype: str) -> None:
        """Append the truth of the next device index."""
        self.codes.append(CLASS_CODE[cls])
        self.flag_bits.append(flags)
        self.archetypes.append(archetype)

    def add_flags(self, index: int, flags: int) -> None:
        self.flag_bits[index] |= flags

    def _index(self, object_id: str) -> int:
        index = self._resolve(object_id)
        if index is None or index >= len(self.codes):
            raise KeyError(f"no generated device has object id {object_id!r}")
        return index

    def expected_class(self, object_id: str) -> str:
        return CLASSES[self.codes[self._index(object_id)]]

    def flags(self, object_id: str) -> frozenset[str]:
        bits = self.flag_bits[self._index(object_id)]
        return frozenset(name for name, bit in FLAG_BIT.items() if bits & bit)

    def archetype(self, object_id: str) -> str:
        """Which generator recipe made the device (for debugging a mismatch)."""
        return self.archetypes[self._index(object_id)]

    def class_counts(self) -> dict[str, int]:
        """Devices per class, every class present (zero when none)."""
        counts = [0] * len(CLASSES)
        for code in self.codes:
            counts[code] += 1
        return dict(zip(CLASSES, counts, strict=True))

    def ids_of(self, cls: str) -> list[str]:
        if cls not in CLASS_CODE:
            raise KeyError(f"unknown class {cls!r}; classes are {', '.join(CLASSES)}")
        code = CLASS_CODE[cls]
        return [self._object_id(i) for i, c in enumerate(self.codes) if c == code]

    def ids_with(self, *flags: str, without: tuple[str, ...] = ()) -> list[str]:
        """Object ids of devices carrying all `flags` and none of `without`."""
        need, avoid = flag_mask(*flags), flag_mask(*without)
        return [self._object_id(i) for i, bits in enumerate(self.flag_bits) if bits & need == need and not bits & avoid]
