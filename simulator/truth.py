"""Ground truth: the class and enforce outcome each generated device should get, read from docs/safety.md.

The generator records which population (recipe) drew each device; the class and the outcome of that
population come from the table under "## Expected outcomes" in docs/safety.md, written from Microsoft's
definitions. The truth is therefore never a call into the project's rules and never a second copy of
them: change a row and the simulator's expectations follow. The truth describes the fleet as generated,
against `Tenant.reference_policy()` at `Tenant.now`; writes made later (disables, deletes) do not change it.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: Classification order of the nightly scan; every device has exactly one.
CLASSES: tuple[str, ...] = (
    "protected",
    "kept",  # a device its owner kept with the keep link (none in a generated fleet: a test keeps one)
    "pending",
    "registration_unclear",
    "reactivated",
    "expired_disabled",
    "duplicate",
    "stale",
    "no_signin_record",
    "unmanaged",
    "healthy",
)
CLASS_CODE: dict[str, int] = {name: code for code, name in enumerate(CLASSES)}

#: What an enforce run (`pending.action: delete`, limits lifted) does to a device, as the table words it.
OUTCOMES: tuple[str, ...] = ("disabled+tagged", "tagged", "deleted", "tag cleared", "notified on-prem", "no write")
OUTCOME_CODE: dict[str, int] = {name: code for code, name in enumerate(OUTCOMES)}
_NOT_STATED = 255  # hand-made devices whose test states only a class

#: Facts about a device that tests may want to select on (bit positions are internal).
FLAGS: tuple[str, ...] = (
    "autopilot",  # [ZTDID] in physicalIds
    "hybrid",  # trustType ServerAd
    "pending",  # ServerAd, onPremisesSyncEnabled true, alternativeSecurityIds empty (Microsoft's definition)
    "pending_stuck",  # pending for longer than pending.stuck_after_days (14)
    "windows",
    "non_windows",
    "bitlocker",  # has BitLocker recovery keys
    "laps",  # has a Windows LAPS credential stored in Entra
    "intune",  # has an Intune managed-device record
    "intune_recent",  # Intune lastSyncDateTime within 30 days
    "protected_group",  # transitive member of the protected group
    "protected_group_nested",  # ... through the nested group
    "protected_name",  # displayName matches KIOSK-*
    "special_profile",  # profileType Printer, SecureVM, Shared or IoT
    "signin_blank",  # approximateLastSignInDateTime null
    "signin_old",  # last sign-in older than the 90-day threshold
    "disabled",  # accountEnabled false
    "disabled_by_janitor",  # disabled, with entra-janitor's "disabled" tag in extensionAttribute15
    "tagged_by_janitor",  # entra-janitor's "tagged" marker in extensionAttribute15
    "reactivated",  # entra-janitor's tag, and the device signed in after it or is enabled again
    "foreign_tag",  # extensionAttribute15 holds someone else's text
    "unclear_keys",  # ServerAd with alternativeSecurityIds, none of which decodes to X509
    "unsynced_hybrid",  # ServerAd whose onPremisesSyncEnabled is not true
    "downlevel_hybrid",  # ServerAd Windows 7 / 8.1 (operatingSystemVersion 6.x)
    "duplicate_older",  # an older object of re-joined hardware (same [HWID] / [USER-HWID])
    "duplicate_newer",  # the newest object of re-joined hardware
    "shared_name",  # displayName shared with other, unrelated, active hardware
    "hostile_name",  # a pair: a colleague's active PC and a second device named after it
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

#: Where the table lives: the repository checkout the simulator runs from (it is a local tool).
SAFETY_DOC = Path(__file__).resolve().parents[1] / "docs" / "safety.md"
SECTION = "## Expected outcomes"
_COLUMNS = ("population", "what it is", "expected class", "enforce outcome", "source")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_NAME = re.compile(r"`([a-z0-9_.]+)`")
_OUTCOME = re.compile(r"^(" + "|".join(re.escape(o) for o in sorted(OUTCOMES, key=len, reverse=True)) + r")(?:\s*\((.+)\))?$")


class ExpectationsError(RuntimeError):
    """docs/safety.md is missing or its "Expected outcomes" table cannot be read."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """One row of the table, for one population."""

    population: str
    what: str
    cls: str
    outcome: str
    note: str | None
    source: str


def flag_mask(*names: str) -> int:
    mask = 0
    for name in names:
        mask |= FLAG_BIT[name]
    return mask


@cache
def load_expectations(path: Path = SAFETY_DOC) -> Mapping[str, Expectation]:
    """Every population's row of the "Expected outcomes" table (read once per process and path)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExpectationsError(
            f"{path} is missing: the simulator reads its ground truth from the '{SECTION}' table there; "
            "run it from a repository checkout"
        ) from None
    rows = _table_rows(text, path)
    found: dict[str, Expectation] = {}
    for number, cells in rows:
        for row in _parse_row(cells, f"{path}: table row {number}"):
            if row.population in found:
                raise ExpectationsError(f"{path}: population {row.population!r} has two rows in '{SECTION}'")
            found[row.population] = row
    if not found:
        raise ExpectationsError(f"{path}: the '{SECTION}' table has no rows")
    return found


def _table_rows(text: str, path: Path) -> list[tuple[int, list[str]]]:
    """The data rows (cells stripped) of the first table in the section."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == SECTION)
    except StopIteration:
        raise ExpectationsError(f"{path} has no '{SECTION}' section") from None
    table: list[list[str]] = []
    for line in lines[start + 1 :]:
        if re.match(r"^#{1,2} ", line):
            break
        if line.lstrip().startswith("|"):
            table.append([cell.strip() for cell in _CELL_SPLIT.split(line.strip().strip("|"))])
        elif table:
            break
    if len(table) < 2 or tuple(c.lower() for c in table[0]) != _COLUMNS:
        raise ExpectationsError(f"{path}: the '{SECTION}' table must have the columns {' | '.join(_COLUMNS)}")
    return [(n, cells) for n, cells in enumerate(table[2:], start=1)]


def _parse_row(cells: list[str], where: str) -> list[Expectation]:
    if len(cells) != len(_COLUMNS):
        raise ExpectationsError(f"{where}: {len(cells)} cells, expected {len(_COLUMNS)}")
    names_cell, what, cls_cell, outcome_cell, source = cells
    names = _NAME.findall(names_cell)
    cls = cls_cell.strip("`")
    outcome = _OUTCOME.match(outcome_cell)
    if not names:
        raise ExpectationsError(f"{where}: name the population(s) in backticks, e.g. `aad_win_stale`")
    if cls not in CLASS_CODE:
        raise ExpectationsError(f"{where}: class {cls_cell!r} is not one of {', '.join(CLASSES)}")
    if outcome is None:
        raise ExpectationsError(f"{where}: outcome {outcome_cell!r} must be one of {', '.join(OUTCOMES)} (+ optional '(note)')")
    if not source or not what:
        raise ExpectationsError(f"{where}: every row says what the population is and cites its source")
    return [Expectation(name, what, cls, outcome.group(1), outcome.group(2), source) for name in names]


class GroundTruth:
    """Expected class, outcome and flags per device, addressed by object id."""

    def __init__(
        self,
        resolve: Callable[[str], int | None],
        object_id: Callable[[int], str],
        expectations: Mapping[str, Expectation] | None = None,
    ) -> None:
        self._resolve = resolve
        self._object_id = object_id
        self.expectations = load_expectations() if expectations is None else expectations
        self.codes = bytearray()
        self.outcomes = bytearray()
        self.flag_bits = array("Q")
        self.archetypes: list[str] = []

    def record(self, population: str, flags: int) -> None:
        """Append the truth of the next device index: its population's row of the table."""
        row = self.expectations.get(population)
        if row is None:
            raise ExpectationsError(f"population {population!r} has no row in {SAFETY_DOC.name} '{SECTION}'")
        self._append(row.cls, OUTCOME_CODE[row.outcome], flags, population)

    def record_stated(self, cls: str, flags: int, population: str) -> None:
        """Append a hand-made device whose test states its class (its outcome is not stated)."""
        self._append(cls, _NOT_STATED, flags, population)

    def _append(self, cls: str, outcome: int, flags: int, population: str) -> None:
        self.codes.append(CLASS_CODE[cls])
        self.outcomes.append(outcome)
        self.flag_bits.append(flags)
        self.archetypes.append(population)

    def add_flags(self, index: int, flags: int) -> None:
        self.flag_bits[index] |= flags

    def _index(self, object_id: str) -> int:
        index = self._resolve(object_id)
        if index is None or index >= len(self.codes):
            raise KeyError(f"no generated device has object id {object_id!r}")
        return index

    def expected_class(self, object_id: str) -> str:
        return CLASSES[self.codes[self._index(object_id)]]

    def expected_outcome(self, object_id: str) -> str | None:
        """What an enforce run should do to the device (None: a hand-made device whose test did not say)."""
        code = self.outcomes[self._index(object_id)]
        return None if code == _NOT_STATED else OUTCOMES[code]

    def flags(self, object_id: str) -> frozenset[str]:
        bits = self.flag_bits[self._index(object_id)]
        return frozenset(name for name, bit in FLAG_BIT.items() if bits & bit)

    def archetype(self, object_id: str) -> str:
        """Which population (the table row) the device was drawn from."""
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

    def ids_with_outcome(self, outcome: str) -> list[str]:
        if outcome not in OUTCOME_CODE:
            raise KeyError(f"unknown outcome {outcome!r}; outcomes are {', '.join(OUTCOMES)}")
        code = OUTCOME_CODE[outcome]
        return [self._object_id(i) for i, c in enumerate(self.outcomes) if c == code]

    def ids_with(self, *flags: str, without: tuple[str, ...] = ()) -> list[str]:
        """Object ids of devices carrying all `flags` and none of `without`."""
        need, avoid = flag_mask(*flags), flag_mask(*without)
        return [self._object_id(i) for i, bits in enumerate(self.flag_bits) if bits & need == need and not bits & avoid]
