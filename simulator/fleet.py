"""Seeded fleet generator: devices drawn from named populations of a real tenant.

Every device comes from one recipe that records its population (`truth.archetype`); what the population
should get (class under the reference policy, outcome of an enforce run) is not decided here but read from
the "Expected outcomes" table in docs/safety.md (see truth.py). Recipes only build what the population is
in Graph's terms. Generated timestamps keep clear of every threshold by days, except the `edge.*` recipes,
which sit 12 hours either side on purpose (see docs/simulator.md). The same seed, size, profile and `now`
always give the same tenant, byte for byte.
"""

from __future__ import annotations

import base64
import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import tags
from simulator import timefmt
from simulator.devicestore import DeviceStore
from simulator.directory import Group, Groups, RegistrationPolicy, User
from simulator.guids import IndexedGuids
from simulator.timefmt import DAY, NULL
from simulator.truth import FLAG_BIT, GroundTruth

F = FLAG_BIT
DOMAIN = "contoso.example"
TAG_ATTRIBUTE = f"extensionAttribute{tags.DEFAULT_ATTRIBUTE}"

# Fractions of the fleet per population. Group kinds (_GROUP_ROLES) count groups of 2 or 3 devices.
# The filler `aad_win` (healthy Entra joined Windows) takes whatever is left.
_MIXED: dict[str, float] = {
    "aad_win_unmanaged": 0.008,
    "aad_win_stale": 0.006,
    "wp_win": 0.03,
    "wp_win_stale": 0.002,
    "mobile": 0.14,
    "mobile_stale": 0.007,
    "mobile_stale.tagged": 0.003,
    "hybrid": 0.17,
    "hybrid_stale": 0.008,
    "pending_new": 0.008,
    "pending_stuck": 0.016,
    "autopilot": 0.03,
    "kiosk": 0.004,
    "pgroup": 0.006,
    "blank_recent": 0.003,
    "blank_old": 0.004,
    "disabled_other": 0.004,
    "disabled_other.foreign": 0.002,
    "janitor_expired.plain": 0.0008,
    "janitor_expired.keys": 0.0008,
    "janitor_expired.intune_recent": 0.0006,
    "janitor_expired.keys_intune_old": 0.0006,
    "janitor_expired.laps": 0.0006,
    "janitor_recent": 0.002,
    "dup2": 0.003,
    "dup3": 0.0005,
    "dup_mobile": 0.001,
    "dup_hybrid": 0.001,
    "dup_young": 0.0005,
    # Populations of issue 11 (safety semantics): each a way the old rules wrote to a device in use.
    "shared_iphone": 0.004,
    "shared_win": 0.001,
    "hostile_name": 0.0008,
    "foreign_tag": 0.001,
    "reactivated.signed_in": 0.0006,
    "reactivated.enabled": 0.0004,
    "reactivated.disabled_again": 0.0004,
    "reactivated.mobile": 0.0004,
    "registration_unclear": 0.001,
    "special_profile": 0.003,
    "unsynced_hybrid": 0.001,
    "downlevel_hybrid": 0.001,
    "intune_active": 0.001,
}
PROFILES: dict[str, dict[str, float]] = {
    # A realistic tenant: about 1.5 % destructive candidates (under the default blast-radius limits).
    "mixed": _MIXED,
    # 20 % of the fleet stale (blast-radius breaker tests).
    "stale20": {**_MIXED, "aad_win_stale": 0.14, "wp_win_stale": 0.02, "mobile_stale": 0.02, "hybrid_stale": 0.02},
    # Nothing to do: only healthy and protected devices.
    "clean": {"wp_win": 0.03, "mobile": 0.14, "hybrid": 0.17, "autopilot": 0.03, "kiosk": 0.004},
}
#: Placed once each (fleets of 200 devices or more, profile "mixed"/"stale20"), 12 hours from a threshold.
EDGE_CASES: tuple[str, ...] = (
    "edge.stale_just",
    "edge.fresh_just",
    "edge.future_signin",
    "edge.expired_just",
    "edge.recent_just",
    "edge.blank_just",
    "edge.malformed_tag",
    "edge.pending_odd_key",
    "edge.unmanaged_null",
)
#: Populations drawn as linked groups; a member's population is "<kind>.<role>".
_GROUP_ROLES: dict[str, tuple[str, ...]] = {
    "dup2": ("new", "old"),
    "dup3": ("new", "old", "old"),
    "dup_mobile": ("new", "old"),
    "dup_hybrid": ("new", "old"),
    "dup_young": ("new", "old"),
    "shared_win": ("recent", "older", "older"),
    "hostile_name": ("victim", "impostor"),
}
_MIN_COUNT = 2  # every population appears at least this often in fleets of 200 or more
_EDGE_MIN_FLEET = 200

WINDOWS_VERSIONS = ("10.0.19045.4291", "10.0.22631.3593", "10.0.26100.2314")
DOWN_LEVEL_VERSIONS = ("6.1.7601", "6.3.9600")  # Windows 7 SP1, Windows 8.1
PLATFORMS = (("iOS", ("17.5.1", "18.1")), ("Android", ("14.0", "15.0")), ("MacMDM", ("14.5", "15.1")))
#: Graph's profileType values other than the default RegisteredDevice.
SPECIAL_PROFILES = ("Printer", "SecureVM", "Shared", "IoT")
#: What other teams keep in extensionAttribute15 (Conditional Access filters, dynamic groups, asset data).
FOREIGN_VALUES = ("CA-Exclude-LegacyAuth", "Ring2-Pilot", "AssetTag=INV-20417", "PAW", "DoNotTouch - Finance")
_FIRST = ("Alex", "Sam", "Kim", "Noor", "Lea", "Omar", "Ivy", "Jon", "Mia", "Raj", "Ana", "Tom", "Zoe", "Ben", "Eva", "Li")
_LAST = ("Meyer", "Okafor", "Silva", "Novak", "Haddad", "Larsen", "Tanaka", "Garcia", "Kowal", "Dubois", "Rossi", "Berg")
_STALE_BUCKETS = ((95, 120), (120, 180), (180, 365), (365, 730), (730, 1100))
_NAME_SPACE = 16**7
_PLATFORM_VERSIONS = dict(PLATFORMS)
_ENROLLMENT = {"AzureAd": "windowsAzureADJoin", "Workplace": "userEnrollment"}
# base64 of the UTF-16LE text "X509:<SHA1-TP-PUBKEY>": 42 bytes, a multiple of 3, so a key is this + base64(rest).
_X509_PREFIX = base64.b64encode("X509:<SHA1-TP-PUBKEY>".encode("utf-16-le")).decode()
_GENERIC_IPHONE = "iPhone"  # what apps see as the device name since iOS 16


@dataclass
class Fleet:
    """Everything `Tenant` serves, as built by `build_fleet`."""

    store: DeviceStore
    truth: GroundTruth
    users: list[User]
    groups: Groups
    policy: RegistrationPolicy
    owners: array  # user index per device, -1 for none
    intune_sync: array  # epoch seconds of Intune lastSyncDateTime, NULL when not enrolled
    bitlocker: array  # recovery keys per device
    onprem_sid: dict[int, str]  # synced hybrid device index -> on-premises SID (kept after delete, for re-sync)
    domain_sid: str
    protected_group_id: str
    nested_protected_group_id: str
    join_group_id: str
    lab_group_id: str
    admin_upn: str
    sender_upn: str
    heavy_users: list[str] = field(default_factory=list)
    builder: FleetBuilder | None = None
    # 1 = Entra ID stores a Windows LAPS password for the device; devices past the end have none.
    laps: array = field(default_factory=lambda: array("B"))


@dataclass(frozen=True, slots=True)
class _Member:
    """One planned member of a linked group (re-joined hardware, a shared name, a hostile pair)."""

    population: str
    name: str
    signin: int
    reg: int
    hardware: str  # its [HWID] / [USER-HWID] physicalIds entry


def build_fleet(*, devices: int, seed: int, now: int, profile: str, user_device_quota: int = 50) -> Fleet:
    """Generate a tenant's directory. `now` is epoch seconds; the result depends only on the arguments."""
    if profile not in PROFILES:
        raise ValueError(f"unknown fleet profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if devices < 0:
        raise ValueError(f"devices must be >= 0, not {devices}")
    return FleetBuilder(devices, seed, now, profile, user_device_quota).build()


def x509_key(rng: random.Random) -> str:
    """An alternativeSecurityIds key as Entra writes it: base64 of UTF-16LE `X509:<SHA1-TP-PUBKEY>...`."""
    return _X509_PREFIX + base64.b64encode(f"{rng.getrandbits(84):021X}".encode("utf-16-le")).decode()


def text_key(text: str) -> dict[str, Any]:
    """An alternativeSecurityIds entry whose key is base64 of UTF-16LE `text` (e.g. not an X509 key)."""
    return {"type": 2, "identityProvider": None, "key": base64.b64encode(text.encode("utf-16-le")).decode()}


def _is_x509(entry: dict[str, Any]) -> bool:
    """Whether an alternativeSecurityIds entry's key decodes to `X509:...` (a fact for the flags only)."""
    try:
        return base64.b64decode(entry.get("key") or "").decode("utf-16-le").startswith("X509:")
    except ValueError:
        return False


def _group_kind(slot: str) -> str | None:
    kind = slot.split(".", 1)[0]
    return kind if kind in _GROUP_ROLES else None


class FleetBuilder:
    """Builds a fleet; kept by the tenant afterwards so devices added later use the same recipe code."""

    def __init__(self, n: int, seed: int, now: int, profile: str, quota: int) -> None:
        self.n, self.now, self.profile, self.quota = n, now, profile, quota
        self.seed_text = f"entra-janitor-simulator:{seed}"
        self.rng = random.Random(self.seed_text)
        rng = self.rng
        self.store = DeviceStore(IndexedGuids(rng), IndexedGuids(rng))
        self.truth = GroundTruth(lambda oid: self.store.find(oid, include_deleted=True), self.store.object_id)
        self.owners = array("i")
        self.intune = array("q")
        self.bitlocker = array("B")
        self.laps = array("B")
        self.onprem_sid: dict[int, str] = {}
        self.name_mul = rng.randrange(_NAME_SPACE) | 1  # odd, so index -> name is a bijection: no accidental duplicates
        self.name_add = rng.randrange(_NAME_SPACE)
        self.domain_sid = (
            f"S-1-5-21-{rng.randrange(10**9, 4 * 10**9)}-{rng.randrange(10**9, 4 * 10**9)}-{rng.randrange(10**8, 10**9)}"
        )
        self.counters: dict[str, int] = {}
        self.group_plan: dict[int, _Member] = {}
        self.protected_direct: list[int] = []
        self.protected_nested: list[int] = []
        self.users: list[User] = []
        self.regular_users = range(0)

    # ------------------------------------------------------------------ top level

    def build(self) -> Fleet:
        self._make_users()
        slots = self._slots()
        self.rng.shuffle(slots)
        self._plan_groups(slots)
        recipes = self._recipes()
        for position, slot in enumerate(slots):
            kind = _group_kind(slot)
            if kind is not None:
                self._group_member(position)
            else:
                recipes[slot](position)
        heavy = self._assign_heavy_users()
        groups, ids = self._make_groups()
        policy = RegistrationPolicy(
            join_mode="selected",
            join_users=[self.users[2].id] if len(self.users) > 2 else [],
            join_groups=[ids["join"]],
            user_device_quota=self.quota,
        )
        return Fleet(
            store=self.store,
            truth=self.truth,
            users=self.users,
            groups=groups,
            policy=policy,
            owners=self.owners,
            intune_sync=self.intune,
            bitlocker=self.bitlocker,
            onprem_sid=self.onprem_sid,
            domain_sid=self.domain_sid,
            protected_group_id=ids["protected"],
            nested_protected_group_id=ids["nested"],
            join_group_id=ids["join"],
            lab_group_id=ids["lab"],
            admin_upn=self.users[0].user_principal_name,
            sender_upn=self.users[1].user_principal_name,
            heavy_users=heavy,
            builder=self,
            laps=self.laps,
        )

    def _slots(self) -> list[str]:
        weights = PROFILES[self.profile]
        big = self.n >= _EDGE_MIN_FLEET
        counts: dict[str, int] = {}
        for name, fraction in weights.items():
            count = round(self.n * fraction)
            counts[name] = max(count, _MIN_COUNT) if big else count
        slots: list[str] = []
        if big and self.profile != "clean":
            slots.extend(EDGE_CASES)
        for name, count in counts.items():
            roles = _GROUP_ROLES.get(name)
            if roles:
                slots.extend(f"{name}.{role}" for _ in range(count) for role in roles)
            else:
                slots.extend([name] * count)
        if len(slots) > self.n:  # tiny fleets: keep a proportional sample of the recipes
            slots.sort()
            self.rng.shuffle(slots)
            slots = [s for s in slots if _group_kind(s) is None][: self.n]
        slots.extend(["aad_win"] * (self.n - len(slots)))
        return slots

    # ------------------------------------------------------------------ linked groups

    def _plan_groups(self, slots: list[str]) -> None:
        """Link the shuffled group slots: each group's members get one plan (names, times, hardware ids)."""
        planners: dict[str, Callable[[str, list[int]], None]] = {
            "dup2": self._plan_rejoin,
            "dup3": self._plan_rejoin,
            "dup_mobile": self._plan_rejoin,
            "dup_hybrid": self._plan_rejoin,
            "dup_young": self._plan_rejoin,
            "shared_win": self._plan_shared_win,
            "hostile_name": self._plan_hostile,
        }
        for kind, roles in _GROUP_ROLES.items():
            by_role = {role: [p for p, s in enumerate(slots) if s == f"{kind}.{role}"] for role in dict.fromkeys(roles)}
            taken = dict.fromkeys(by_role, 0)
            for _ in range(len(by_role[roles[0]])):
                members = []
                for role in roles:
                    members.append(by_role[role][taken[role]])
                    taken[role] += 1
                planners[kind](kind, members)

    def _hardware(self, mobile: bool) -> str:
        """A hardware identity entry for physicalIds: [USER-HWID] on registered mobiles, [HWID] otherwise."""
        if mobile:
            return f"[USER-HWID]:{self.rng.getrandbits(64):016x}"
        return f"[HWID]:h:{self.rng.getrandbits(52)}"

    def _plan_rejoin(self, kind: str, members: list[int]) -> None:
        """The same hardware joined again: one [HWID] entry and trust type; older objects went quiet first."""
        new, *olds = members
        young = kind == "dup_young"
        name = {"dup_mobile": _GENERIC_IPHONE, "dup_hybrid": self._name("WKS-", new)}.get(kind, self._name("DESKTOP-", new))
        hardware = self._hardware(kind == "dup_mobile")
        new_signin = self.now - self._between(0, (2 if young else 15) * DAY)
        new_reg = new_signin - self._between((3 if young else 1) * DAY, (4 if young else 10) * DAY)
        self.group_plan[new] = _Member(f"{kind}.new", name, new_signin, new_reg, hardware)
        newer_reg = new_reg
        for old in olds:
            # Last seen before the newer object was registered; 35-80 days (duplicate only) or 95-600 (stale too),
            # or 6-24 days for dup_young (under duplicate.min_inactive_days).
            low, high = (6, 24) if young else self.rng.choice(((35, 80), (95, 600)))
            signin = self._clear_of_stale(min(self.now - self._between(low * DAY, high * DAY), newer_reg - DAY))
            reg = signin - self._between(30 * DAY, 700 * DAY)
            self.group_plan[old] = _Member(f"{kind}.old", name, signin, reg, hardware)
            newer_reg = reg

    def _plan_shared_win(self, kind: str, members: list[int]) -> None:
        """Unrelated laptops that a naming template gave one name; the others went quiet before one registered."""
        recent, *others = members
        name = self._name("LT-", recent)
        signin = self._ago(0, 10)
        reg = signin - self._between(DAY, 20 * DAY)
        self.group_plan[recent] = _Member(f"{kind}.recent", name, signin, reg, self._hardware(False))
        for other in others:
            older = self._ago(35, 80)
            self.group_plan[other] = _Member(f"{kind}.older", name, older, self._reg_before(older), self._hardware(False))

    def _plan_hostile(self, kind: str, members: list[int]) -> None:
        """A colleague's PC, and a device registered after its last sign-in under the same name."""
        victim, impostor = members
        name = self._name("DESKTOP-", victim)
        away = self._cycle(kind, ("in_office", "on_leave")) == "on_leave"
        signin = self._ago(35, 80) if away else self._ago(2, 20)
        self.group_plan[victim] = _Member(f"{kind}.victim", name, signin, self._reg_before(signin), self._hardware(False))
        reg = self._between(signin + DAY // 2, self.now - DAY // 2)
        self.group_plan[impostor] = _Member(f"{kind}.impostor", name, self._between(reg, self.now), reg, self._hardware(False))

    def _group_member(self, p: int) -> int:
        member = self.group_plan[p]
        kind, role = member.population.split(".", 1)
        flags = {
            "new": F["duplicate_newer"],
            "old": F["duplicate_older"],
            "recent": F["shared_name"],
            "older": F["shared_name"],
            "victim": F["hostile_name"],
            "impostor": F["hostile_name"],
        }[role]
        if kind == "dup_young":
            flags = 0  # the same hardware, but not (yet) a duplicate: no flag claims otherwise
        if kind == "dup_mobile":
            physical = [f"[USER-GID]:{self.rng.getrandbits(64):016x}", member.hardware]
            return self._mobile(
                p, member.population, member.signin, flags, name=member.name, reg=member.reg, os="iOS", physical=physical
            )
        physical = [f"[GID]:g:{self.rng.getrandbits(52)}", member.hardware]
        if kind == "dup_hybrid":
            return self._hybrid(p, member.population, member.signin, flags, name=member.name, reg=member.reg, physical=physical)
        return self._aad_win(p, member.population, member.signin, flags, member.name, reg=member.reg, physical=physical)

    # ------------------------------------------------------------------ helpers

    def _name(self, prefix: str, index: int) -> str:
        return f"{prefix}{(index * self.name_mul + self.name_add) % _NAME_SPACE:07X}"

    def _between(self, low: int, high: int) -> int:
        """A uniform int in [low, high] (cheaper than randint; the generator draws millions)."""
        return low + int(self.rng.random() * (high - low + 1))

    def _ago(self, low_days: float, high_days: float) -> int:
        return self.now - self._between(int(low_days * DAY), int(high_days * DAY))

    def _stale_signin(self) -> int:
        low, high = _STALE_BUCKETS[int(self.rng.random() * len(_STALE_BUCKETS))]
        return self._ago(low, high)

    def _clear_of_stale(self, signin: int) -> int:
        """Move a computed sign-in that landed within 4 days of the 90-day threshold to 95 days ago."""
        return self.now - 95 * DAY if 86 * DAY < self.now - signin < 94 * DAY else signin

    def _reg_before(self, moment: int) -> int:
        base = self.now if moment == NULL else moment
        return base - self._between(DAY, 900 * DAY)

    def _cycle(self, archetype: str, pattern: tuple[str, ...]) -> str:
        k = self.counters.get(archetype, 0)
        self.counters[archetype] = k + 1
        return pattern[k % len(pattern)]

    def _owner(self) -> int:
        users = self.regular_users
        return users[int(self.rng.random() * len(users))] if users else -1

    def _intune_after(self, signin: int) -> int:
        """An Intune lastSyncDateTime a little after the last sign-in, kept a day clear of 30 days ago."""
        base = self.now - self._between(0, 20 * DAY) if signin == NULL else min(signin + self._between(0, 2 * DAY), self.now)
        if 29 * DAY < self.now - base < 31 * DAY:
            base = self.now - 28 * DAY
        return base

    def _tag(self, action: str, at: int) -> dict[str, str]:
        moment = timefmt.from_epoch(at)
        assert moment is not None
        run = f"run-{self.rng.getrandbits(32):08x}"
        return {TAG_ATTRIBUTE: tags.Tag(action=action, at=moment, reason="stale", run_id=run).render()}

    # ------------------------------------------------------------------ the one place devices are added

    def _add(
        self,
        *,
        archetype: str,
        flags: int,
        name: str,
        trust: str,
        os: str,
        signin: int,
        reg: int,
        cls: str | None = None,
        enabled: bool = True,
        managed: bool | None = True,
        compliant: bool | None = None,
        physical: list[str] | None = None,
        registered: bool = True,
        altsec: list[dict[str, Any]] | None = None,
        sync_enabled: bool | None = None,
        onprem_sync: int = NULL,
        ext: dict[str, str] | None = None,
        owner: bool = True,
        bitlocker: int = 0,
        laps: int = 0,
        intune: int = NULL,
        sid: str | None = None,
        version: str | None = None,
        profile_type: str = "RegisteredDevice",
    ) -> int:
        """Append one device. Its truth is its population's table row (`cls` only for hand-made devices)."""
        rng, store = self.rng, self.store
        index = len(store)
        windows = os == "Windows"
        hybrid = trust == "ServerAd"
        if physical is None:
            gid = rng.getrandbits(52)
            physical = [f"[GID]:g:{gid}", f"[HWID]:h:{gid + 3}"] if registered else []
        if altsec is None:
            altsec = [{"type": 2, "identityProvider": None, "key": x509_key(rng)}] if registered else []
        synced = sync_enabled if hybrid else None  # cloud objects carry null, as Graph returns them
        if hybrid:
            sid = sid or f"{self.domain_sid}-{1100 + index}"
            if synced is True:  # only a synced object comes back when Entra Connect runs again
                self.onprem_sid[index] = sid
        if version is None:
            versions = WINDOWS_VERSIONS if windows else _PLATFORM_VERSIONS[os]
            version = versions[int(rng.random() * len(versions))]
        if compliant is None and managed:
            compliant = rng.random() < 0.9
        core = {
            "id": store.object_ids.make(index, rng),
            "deviceId": store.device_ids.make(index, rng),
            "displayName": name,
            "accountEnabled": enabled,
            "approximateLastSignInDateTime": timefmt.iso(signin),
            "registrationDateTime": timefmt.iso(reg),
            "physicalIds": physical,
            "alternativeSecurityIds": altsec,
            "onPremisesLastSyncDateTime": timefmt.iso(onprem_sync),
            "onPremisesSecurityIdentifier": sid,
        }
        profile = store.profile_id(
            (
                trust,
                os,
                version,
                managed,
                compliant if managed else None,
                synced,
                profile_type,
                "MDM" if managed else None,
                "Company" if trust != "Workplace" else "Personal",
                _ENROLLMENT.get(trust) if managed else None,
            )
        )
        store.append(core, profile, ext, signin=signin, registered=reg, onprem_sync=onprem_sync)
        owner_index = self._owner() if owner else -1
        self.owners.append(owner_index)
        self.intune.append(intune)
        self.bitlocker.append(bitlocker)
        self.laps.append(laps)
        flags |= self._facts(
            windows=windows,
            trust=trust,
            version=version,
            synced=synced,
            altsec=altsec,
            onprem_sync=onprem_sync,
            signin=signin,
            enabled=enabled,
            ext=ext,
            profile_type=profile_type,
        )
        if managed is not True:
            flags |= F["not_managed"]
        if owner_index >= 0:
            flags |= F["has_owner"]
        if bitlocker:
            flags |= F["bitlocker"]
        if laps:
            flags |= F["laps"]
        if intune != NULL:
            flags |= F["intune"]
            if self.now - intune <= 30 * DAY:
                flags |= F["intune_recent"]
        if cls is None:
            self.truth.record(archetype, flags)
        else:
            self.truth.record_stated(cls, flags, archetype)
        return index

    def _facts(
        self,
        *,
        windows: bool,
        trust: str,
        version: str,
        synced: bool | None,
        altsec: list[dict[str, Any]],
        onprem_sync: int,
        signin: int,
        enabled: bool,
        ext: dict[str, str] | None,
        profile_type: str,
    ) -> int:
        """Flags that follow from the device's own properties (tests select on them; the truth ignores them)."""
        flags = F["windows"] if windows else F["non_windows"]
        if trust == "ServerAd":
            flags |= F["hybrid"]
            if synced is not True:
                flags |= F["unsynced_hybrid"]
            if windows and version.startswith("6."):
                flags |= F["downlevel_hybrid"]
            if synced is True and not altsec:
                flags |= F["pending"]
                if onprem_sync != NULL and self.now - onprem_sync > 14 * DAY:
                    flags |= F["pending_stuck"]
            if altsec and not any(_is_x509(entry) for entry in altsec):
                flags |= F["unclear_keys"]
        if profile_type != "RegisteredDevice":
            flags |= F["special_profile"]
        if signin == NULL:
            flags |= F["signin_blank"]
        elif self.now - signin > 90 * DAY:
            flags |= F["signin_old"]
        elif signin > self.now:
            flags |= F["future_signin"]
        if not enabled:
            flags |= F["disabled"]
        return flags | self._tag_facts((ext or {}).get(TAG_ATTRIBUTE), signin, enabled)

    @staticmethod
    def _tag_facts(value: str | None, signin: int, enabled: bool) -> int:
        if not value:
            return 0
        tag = tags.parse(value)
        if tag is None:
            return F["foreign_tag"]
        at = timefmt.epoch(tag.at)
        flags = F["tagged_by_janitor"] if tag.action == "tagged" else 0
        if tag.action == "disabled" and not enabled:
            flags |= F["disabled_by_janitor"]
        if (signin != NULL and signin > at) or (tag.action == "disabled" and enabled):
            flags |= F["reactivated"]
        return flags

    def _windows_extras(self, signin: int, managed: bool = True) -> dict[str, Any]:
        """BitLocker keys (most Windows devices) and an Intune record (managed ones)."""
        roll = self.rng.random()
        return {
            "bitlocker": 2 if roll < 0.1 else 1 if roll < 0.7 else 0,
            "intune": self._intune_after(signin) if managed else NULL,
        }

    # ------------------------------------------------------------------ recipes

    def _recipes(self) -> dict[str, Callable[[int], Any]]:
        edge = F["edge_case"]
        now = self.now
        return {
            "aad_win": lambda p: self._aad_win(p, "aad_win", self._ago(0, 85)),
            "aad_win_stale": lambda p: self._aad_win(p, "aad_win_stale", self._stale_signin()),
            "aad_win_unmanaged": lambda p: self._aad_win(p, "aad_win_unmanaged", self._ago(0, 85), managed=False),
            "wp_win": lambda p: self._wp_win(p, "wp_win", self._ago(0, 85)),
            "wp_win_stale": lambda p: self._wp_win(p, "wp_win_stale", self._stale_signin()),
            "mobile": lambda p: self._mobile(p, "mobile", self._ago(0, 85)),
            "mobile_stale": lambda p: self._mobile(p, "mobile_stale", self._stale_signin()),
            "mobile_stale.tagged": lambda p: self._mobile(
                p, "mobile_stale.tagged", self._stale_signin(), ext=self._tag("tagged", self._ago(1, 60))
            ),
            "hybrid": lambda p: self._hybrid(p, "hybrid", self._ago(0, 85)),
            "hybrid_stale": lambda p: self._hybrid(p, "hybrid_stale", self._stale_signin()),
            "pending_new": lambda p: self._pending(p, "pending_new", self._ago(0, 12)),
            "pending_stuck": lambda p: self._pending(p, "pending_stuck", self._ago(16, 400)),
            "autopilot": self._autopilot,
            "kiosk": self._kiosk,
            "pgroup": self._pgroup,
            "blank_recent": lambda p: self._aad_win(p, "blank_recent", NULL, reg=self._ago(0, 80)),
            "blank_old": self._blank_old,
            "disabled_other": lambda p: self._disabled_other(p, "disabled_other", None),
            "disabled_other.foreign": lambda p: self._disabled_other(
                p, "disabled_other.foreign", f"Disabled by helpdesk, ticket INC{self.rng.randrange(10**6, 10**7)}"
            ),
            **{
                f"janitor_expired.{variant}": self._janitor_expired(variant)
                for variant in ("plain", "keys", "intune_recent", "keys_intune_old", "laps")
            },
            "janitor_recent": lambda p: self._janitor_disabled(p, "janitor_recent", self._ago(1, 27), "plain"),
            "shared_iphone": self._shared_iphone,
            "foreign_tag": self._foreign_tag,
            **{f"reactivated.{v}": self._reactivated(v) for v in ("signed_in", "enabled", "disabled_again", "mobile")},
            "registration_unclear": self._registration_unclear,
            "special_profile": self._special_profile,
            "unsynced_hybrid": self._unsynced_hybrid,
            "downlevel_hybrid": self._downlevel_hybrid,
            "intune_active": self._intune_active,
            "edge.stale_just": lambda p: self._aad_win(p, "edge.stale_just", now - 90 * DAY - DAY // 2, edge),
            "edge.fresh_just": lambda p: self._aad_win(p, "edge.fresh_just", now - 90 * DAY + DAY // 2, edge),
            "edge.future_signin": lambda p: self._aad_win(p, "edge.future_signin", now + 600, edge),
            "edge.expired_just": lambda p: self._janitor_disabled(
                p, "edge.expired_just", now - 30 * DAY - DAY // 2, "plain", edge
            ),
            "edge.recent_just": lambda p: self._janitor_disabled(p, "edge.recent_just", now - 30 * DAY + DAY // 2, "plain", edge),
            "edge.blank_just": lambda p: self._aad_win(p, "edge.blank_just", NULL, edge, reg=now - 90 * DAY - DAY // 2),
            "edge.malformed_tag": self._edge_malformed_tag,
            "edge.pending_odd_key": lambda p: self._pending(
                p, "edge.pending_odd_key", self._ago(20, 60), edge, altsec=[text_key("RSA:<PUBKEY>0F3A")]
            ),
            "edge.unmanaged_null": lambda p: self._aad_win(p, "edge.unmanaged_null", self._ago(0, 60), edge, managed=None),
        }

    def _aad_win(
        self,
        p: int,
        archetype: str,
        signin: int,
        flags: int = 0,
        name: str | None = None,
        *,
        reg: int | None = None,
        managed: bool | None = True,
        physical: list[str] | None = None,
        ext: dict[str, str] | None = None,
        intune: int | None = None,
        **device: Any,
    ) -> int:
        """An Entra joined Windows device; registered before its sign-in unless `reg` says when."""
        extras = {**self._windows_extras(signin, managed is True), **device}
        if intune is not None:
            extras["intune"] = intune
        return self._add(
            archetype=archetype,
            flags=flags,
            name=name or self._name("DESKTOP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(min(signin, self.now)) if reg is None else reg,
            managed=managed,
            physical=physical,
            ext=ext,
            **extras,
        )

    def _wp_win(self, p: int, archetype: str, signin: int) -> int:
        managed = self.rng.random() < 0.3
        return self._add(
            archetype=archetype,
            flags=0,
            name=self._name("LAPTOP-", p),
            trust="Workplace",
            os="Windows",
            signin=signin,
            reg=self._reg_before(signin),
            managed=managed,
            intune=self._intune_after(signin) if managed else NULL,
        )

    def _mobile(
        self,
        p: int,
        archetype: str,
        signin: int,
        flags: int = 0,
        ext: dict[str, str] | None = None,
        name: str | None = None,
        reg: int | None = None,
        os: str | None = None,
        physical: list[str] | None = None,
    ) -> int:
        """An Entra registered phone, tablet or Mac: [USER-GID] and its own [USER-HWID] in physicalIds."""
        if os is None:
            roll = self.rng.random()
            os = "iOS" if roll < 0.5 else "Android" if roll < 0.85 else "MacMDM"
        managed = self.rng.random() < 0.6
        prefix = {"iOS": "iPhone-", "Android": "Android-", "MacMDM": "MacBook-"}[os]
        if physical is None:
            physical = [f"[USER-GID]:{self.rng.getrandbits(64):016x}", self._hardware(True)]
        return self._add(
            archetype=archetype,
            flags=flags,
            name=name or self._name(prefix, p),
            trust="Workplace",
            os=os,
            signin=signin,
            reg=reg if reg is not None else self._reg_before(signin),
            managed=managed,
            physical=physical,
            ext=ext,
            intune=self._intune_after(signin) if managed else NULL,
        )

    def _hybrid(
        self,
        p: int,
        archetype: str,
        signin: int,
        flags: int = 0,
        name: str | None = None,
        reg: int | None = None,
        *,
        synced: bool | None = True,
        managed: bool | None = None,
        **device: Any,
    ) -> int:
        """A hybrid joined Windows computer with its X509 key; Entra Connect synced it 0-3 days ago unless not synced."""
        if managed is None:
            managed = self.rng.random() < 0.5
        extras = {**self._windows_extras(signin, managed), **device}
        return self._add(
            archetype=archetype,
            flags=flags,
            name=name or self._name("WKS-", p),
            trust="ServerAd",
            os="Windows",
            signin=signin,
            reg=reg if reg is not None else self._reg_before(signin),
            managed=managed,
            sync_enabled=synced,
            onprem_sync=extras.pop("onprem_sync", self._ago(0, 3) if synced else NULL),
            owner=False,
            **extras,
        )

    def _pending(
        self,
        p: int,
        archetype: str,
        synced: int,
        flags: int = 0,
        altsec: list[dict[str, Any]] | None = None,
        name: str | None = None,
        sid: str | None = None,
    ) -> int:
        """A hybrid computer Entra Connect synced that never registered: age is onPremisesLastSyncDateTime."""
        return self._add(
            archetype=archetype,
            flags=flags,
            name=name or self._name("PC-", p),
            trust="ServerAd",
            os="Windows",
            signin=NULL,
            reg=NULL,
            managed=None,
            registered=False,
            altsec=altsec,
            sync_enabled=True,
            onprem_sync=synced,
            owner=False,
            sid=sid,
        )

    def _autopilot(self, p: int) -> int:
        state = self._cycle("autopilot", ("ok", "stale", "ok", "expired", "ok", "unmanaged", "ok", "ok", "stale", "ok"))
        rng = self.rng
        signin = self._stale_signin() if state == "stale" else self._ago(0, 85)
        physical = [f"[ZTDID]:{rng.getrandbits(128):032x}", f"[GID]:g:{rng.getrandbits(52)}", f"[HWID]:h:{rng.getrandbits(52)}"]
        enabled, ext = True, None
        if state == "expired":  # disabled by an earlier run, not signed in since
            tagged_at = self._ago(40, 300)
            signin = tagged_at - self._between(91 * DAY, 400 * DAY)
            enabled, ext = False, self._tag("disabled", tagged_at)
        return self._aad_win(
            p,
            "autopilot",
            signin,
            F["autopilot"],
            self._name("CORP-", p),
            managed=state != "unmanaged",
            physical=physical,
            ext=ext,
            enabled=enabled,
            owner=rng.random() < 0.5,
        )

    def _kiosk(self, p: int) -> int:
        state = self._cycle("kiosk", ("ok", "stale", "ok", "blank"))
        signin = {"ok": self._ago(0, 85), "stale": self._stale_signin(), "blank": NULL}[state]
        reg = self._ago(100, 900) if signin == NULL else self._reg_before(signin)
        return self._aad_win(p, "kiosk", signin, F["protected_name"], self._name("KIOSK-", p), reg=reg, owner=False)

    def _pgroup(self, p: int) -> int:
        state = self._cycle("pgroup", ("stale", "pending", "ok", "expired", "hybrid_stale", "unmanaged"))
        nested = self.counters["pgroup"] % 3 == 2  # the 2nd, 5th, ... member sits in the nested group
        flags = F["protected_group"] | (F["protected_group_nested"] if nested else 0)
        if state == "pending":
            index = self._pending(p, "pgroup", self._ago(20, 200), flags)
        elif state == "hybrid_stale":
            index = self._hybrid(p, "pgroup", self._stale_signin(), flags)
        elif state == "expired":
            index = self._janitor_disabled(p, "pgroup", self._ago(40, 300), "plain", flags)
        elif state == "unmanaged":
            index = self._aad_win(p, "pgroup", self._ago(0, 85), flags, managed=False)
        else:
            index = self._aad_win(p, "pgroup", self._stale_signin() if state == "stale" else self._ago(0, 85), flags)
        (self.protected_nested if nested else self.protected_direct).append(index)
        return index

    def _blank_old(self, p: int) -> int:
        kind = self._cycle("blank_old", ("aad", "mobile", "hybrid"))
        reg = self._ago(95, 1000)
        if kind == "mobile":
            return self._mobile(p, "blank_old", NULL, reg=reg)
        if kind == "hybrid":
            return self._hybrid(p, "blank_old", NULL, reg=reg)
        return self._aad_win(p, "blank_old", NULL, reg=reg)

    def _disabled_other(self, p: int, archetype: str, note: str | None) -> int:
        """Disabled by an administrator (not by us), with or without their own note in the tag attribute."""
        return self._aad_win(p, archetype, self._ago(10, 600), ext={TAG_ATTRIBUTE: note} if note else None, enabled=False)

    def _janitor_expired(self, variant: str) -> Callable[[int], int]:
        return lambda p: self._janitor_disabled(p, f"janitor_expired.{variant}", self._ago(33, 400), variant)

    def _janitor_disabled(self, p: int, archetype: str, tagged_at: int, variant: str, flags: int = 0) -> int:
        """Disabled by entra-janitor at `tagged_at`, not signed in since; `variant` picks what a delete would destroy.

        plain: nothing; keys: BitLocker keys; intune_recent: Intune synced 0-10 days ago; keys_intune_old: keys
        and an Intune sync from before the disable; laps: a Windows LAPS password.
        """
        signin = tagged_at - self._between(91 * DAY, 400 * DAY)
        intune = NULL
        if variant == "intune_recent":
            intune = self._ago(0, 10)
        elif variant == "keys_intune_old":
            intune = min(signin + DAY, self.now - 60 * DAY)
        return self._add(
            archetype=archetype,
            flags=flags,
            name=self._name("DESKTOP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(signin),
            enabled=False,
            ext=self._tag("disabled", tagged_at),
            bitlocker=1 if "keys" in variant else 0,
            laps=1 if variant == "laps" else 0,
            intune=intune,
        )

    # ------------------------------------------------------------------ issue 11 populations

    def _shared_iphone(self, p: int) -> int:
        """An iPhone in use: since iOS 16 apps see the generic name "iPhone", so many share it."""
        signin = self._ago(0, 10) if self._cycle("shared_iphone", ("recent", "older")) == "recent" else self._ago(35, 80)
        return self._mobile(p, "shared_iphone", signin, F["shared_name"], name=_GENERIC_IPHONE, os="iOS")

    def _foreign_tag(self, p: int) -> int:
        """A stale device whose tag attribute another team uses (CA device filter, dynamic group, asset data)."""
        value = {TAG_ATTRIBUTE: FOREIGN_VALUES[int(self.rng.random() * len(FOREIGN_VALUES))]}
        if self._cycle("foreign_tag", ("windows", "windows", "mobile")) == "mobile":
            return self._mobile(p, "foreign_tag", self._stale_signin(), ext=value)
        return self._aad_win(p, "foreign_tag", self._stale_signin(), ext=value)

    def _reactivated(self, variant: str) -> Callable[[int], int]:
        """Our tag from an earlier run on a device that came back (signed in after the tag, or enabled again)."""
        archetype = f"reactivated.{variant}"

        def make(p: int) -> int:
            if variant == "mobile":
                return self._mobile(p, archetype, self._ago(0, 20), ext=self._tag("tagged", self._ago(60, 300)))
            tagged_at = self._ago(150, 300) if variant == "disabled_again" else self._ago(40, 300)
            signin = {
                "signed_in": self._ago(0, 20),  # re-enabled by the helpdesk and used since
                "enabled": tagged_at - self._between(91 * DAY, 300 * DAY),  # re-enabled, no sign-in recorded yet
                "disabled_again": self._ago(35, 80),  # used after the tag, then disabled by someone else
            }[variant]
            return self._aad_win(p, archetype, signin, ext=self._tag("disabled", tagged_at), enabled=variant != "disabled_again")

        return make

    def _registration_unclear(self, p: int) -> int:
        """Hybrid computer whose alternativeSecurityIds hold a key that is not X509: neither pending nor registered."""
        state = self._cycle("registration_unclear", ("active", "stale", "blank"))
        signin = {"active": self._ago(0, 85), "stale": self._stale_signin(), "blank": NULL}[state]
        reg = self._ago(100, 600) if signin == NULL else self._reg_before(signin)
        key = text_key(f"RSA:<PUBKEY>{self.rng.getrandbits(64):016X}")
        return self._hybrid(p, "registration_unclear", signin, reg=reg, altsec=[key])

    def _special_profile(self, p: int) -> int:
        """A special-purpose object (profileType Printer, SecureVM, Shared, IoT), in use or long silent."""
        k = self.counters.get("special_profile", 0)
        self.counters["special_profile"] = k + 1
        profile_type = SPECIAL_PROFILES[k % len(SPECIAL_PROFILES)]
        signin = self._stale_signin() if (k // len(SPECIAL_PROFILES)) % 2 == 0 else self._ago(0, 85)
        managed = profile_type in ("Shared", "IoT")
        return self._aad_win(
            p,
            "special_profile",
            signin,
            name=self._name(f"{profile_type.upper()}-", p),
            managed=managed,
            profile_type=profile_type,
            owner=False,
        )

    def _unsynced_hybrid(self, p: int) -> int:
        """A stale hybrid object sync no longer manages: onPremisesSyncEnabled false (sync stopped) or null (never)."""
        synced = False if self._cycle("unsynced_hybrid", ("false", "null")) == "false" else None
        signin = self._stale_signin()
        last_sync = self._between(signin, self.now - 60 * DAY) if synced is False else NULL
        return self._hybrid(p, "unsynced_hybrid", signin, synced=synced, onprem_sync=last_sync)

    def _downlevel_hybrid(self, p: int) -> int:
        """A stale Windows 7 / 8.1 hybrid device: it registered itself; Entra Connect does not carry changes to it."""
        version = DOWN_LEVEL_VERSIONS[int(self.rng.random() * len(DOWN_LEVEL_VERSIONS))]
        return self._hybrid(p, "downlevel_hybrid", self._stale_signin(), synced=None, managed=False, version=version, bitlocker=0)

    def _intune_active(self, p: int) -> int:
        """A Windows device whose Entra sign-in lags while it still checks in with Intune (0-20 days ago)."""
        return self._aad_win(p, "intune_active", self._ago(95, 400), intune=self._ago(0, 20))

    def _edge_malformed_tag(self, p: int) -> int:
        signin = self._ago(200, 400)
        ext = {TAG_ATTRIBUTE: "entra-janitor|disabled|last week|stale|run-0"}
        return self._aad_win(p, "edge.malformed_tag", signin, F["edge_case"], ext=ext, enabled=False)

    # ------------------------------------------------------------------ devices added after generation

    def add_pending_copy(self, name: str, sid: str, synced: int) -> int:
        """A hybrid computer synced back after its Entra object was deleted: a new pending object, same SID."""
        return self._pending(len(self.store), "recreated_by_sync", synced, F["recreated_by_sync"], name=name, sid=sid)

    def add_custom(self, *, expected_class: str, flags: int, owner_index: int, **device: Any) -> int:
        """A hand-made device (tests): the caller states the class it should have."""
        index = self._add(archetype="added", cls=expected_class, flags=flags | F["added"], owner=False, **device)
        self.owners[index] = owner_index
        if owner_index >= 0:
            self.truth.add_flags(index, F["has_owner"])
        return index

    # ------------------------------------------------------------------ users, owners, groups

    def _make_users(self) -> None:
        rng = self.rng
        count = max(12, min(self.n // 10, 100_000))

        def add(upn_local: str, first: str, last: str, display: str, mail: bool = True, enabled: bool = True) -> None:
            upn = f"{upn_local}@{DOMAIN}"
            self.users.append(
                User(
                    id=_guid(rng),
                    display_name=display,
                    given_name=first,
                    surname=last,
                    user_principal_name=upn,
                    mail=upn if mail else None,
                    account_enabled=enabled,
                )
            )

        add("admin", "IT", "Admin", "IT Admin")
        add("entra-janitor", "entra-janitor", "Notifications", "entra-janitor notifications")
        for k in range(2, count):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            add(
                f"{first}.{last}{k}".lower(),
                first,
                last,
                f"{first} {last}",
                mail=rng.random() > 0.03,
                enabled=rng.random() > 0.02,
            )
        self.regular_users = range(2, count)

    def _assign_heavy_users(self) -> list[str]:
        """Give a few users (almost) userDeviceQuota devices, for the join-scope quota check."""
        owned = [i for i, owner in enumerate(self.owners) if owner >= 0]
        heavy_count = max(2, self.n // 10_000)
        targets = [self.quota, self.quota - 1] + [self.quota - self.rng.randint(0, 3) for _ in range(heavy_count - 2)]
        if len(owned) < sum(targets) * 2 or len(self.regular_users) < heavy_count + 2:
            return []
        self.rng.shuffle(owned)
        heavy = [self.regular_users[-1 - k] for k in range(heavy_count)]
        heavy_set, others = set(heavy), self.regular_users[: len(self.regular_users) - heavy_count]
        owners = self.owners
        for i in owned:  # whatever the random draw gave the heavy users goes to someone else
            if owners[i] in heavy_set:
                owners[i] = others[self.rng.randrange(len(others))]
        taken = 0
        for user, target in zip(heavy, targets, strict=True):
            for i in owned[taken : taken + target]:
                owners[i] = user
                if target >= self.quota:
                    self.truth.add_flags(i, F["owner_at_quota"])
            taken += target
        return [self.users[u].id for u in heavy]

    def _make_groups(self) -> tuple[Groups, dict[str, str]]:
        # Group ids depend on the seed only, so a policy built from `Tenant.generate(devices=0, seed=s)` names the
        # same protected group as the full-size tenant of that seed.
        rng, groups = random.Random(f"{self.seed_text}:groups"), Groups()

        def gid() -> str:
            return _guid(rng)

        nested = groups.add(
            Group(gid(), "Protected Devices - Shop Floor", "Nested in Protected Devices", devices=self.protected_nested)
        )
        protected = groups.add(
            Group(
                gid(),
                "Protected Devices",
                "Devices entra-janitor must never touch",
                devices=self.protected_direct,
                groups=[nested],
            )
        )
        lab_devices = [i for i, a in enumerate(self.truth.archetypes) if a in ("aad_win", "aad_win_stale")][::97][:50]
        for i in lab_devices:
            self.truth.add_flags(i, F["lab_group"])
        lab = groups.add(Group(gid(), "Lab Devices", "Test machines (not protected)", devices=lab_devices))
        regular = list(self.regular_users)
        contractors = groups.add(
            Group(gid(), "Join Allowed - Contractors", "Nested in Device Join Allowed", users=regular[3::20])
        )
        join = groups.add(
            Group(gid(), "Device Join Allowed", "Users allowed to Entra join devices", users=regular[4::4], groups=[contractors])
        )
        groups.add(Group(gid(), "All Staff", "Every employee", users=regular))
        items = groups.items
        return groups, {
            "protected": items[protected].id,
            "nested": items[nested].id,
            "join": items[join].id,
            "lab": items[lab].id,
        }


def _guid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
