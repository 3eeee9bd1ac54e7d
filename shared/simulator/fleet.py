"""Seeded fleet generator: devices drawn from named archetypes, each with the class it is meant to have.

Every device comes from one recipe (`archetype`) that fixes its class under the reference policy
(90-day stale threshold, 30-day delete grace, 14-day pending, Autopilot + KIOSK-* + the protected group
protected). Generated timestamps keep clear of every threshold by days, except the `edge.*` recipes,
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
from shared.simulator import timefmt
from shared.simulator.devicestore import DeviceStore
from shared.simulator.directory import Group, Groups, RegistrationPolicy, User
from shared.simulator.guids import IndexedGuids
from shared.simulator.timefmt import DAY, NULL
from shared.simulator.truth import FLAG_BIT, GroundTruth

F = FLAG_BIT
DOMAIN = "contoso.example"
TAG_ATTRIBUTE = f"extensionAttribute{tags.DEFAULT_ATTRIBUTE}"

# Fractions of the fleet per archetype. Duplicate archetypes count groups (2 or 3 devices each).
# The filler `aad_win` (healthy Entra joined Windows) takes whatever is left.
_MIXED: dict[str, float] = {
    "aad_win_unmanaged": 0.008,
    "aad_win_stale": 0.006,
    "wp_win": 0.03,
    "wp_win_stale": 0.002,
    "mobile": 0.14,
    "mobile_stale": 0.01,
    "hybrid": 0.17,
    "hybrid_stale": 0.008,
    "pending_new": 0.008,
    "pending_stuck": 0.016,
    "autopilot": 0.03,
    "kiosk": 0.004,
    "pgroup": 0.006,
    "blank_recent": 0.003,
    "blank_old": 0.004,
    "disabled_other": 0.006,
    "janitor_expired": 0.003,
    "janitor_recent": 0.002,
    "dup2": 0.003,
    "dup3": 0.0005,
    "dup_mobile": 0.001,
    "dup_hybrid": 0.001,
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
_GROUP_ROLES = {"dup2": ("new", "old"), "dup3": ("new", "old", "old"), "dup_mobile": ("new", "old"), "dup_hybrid": ("new", "old")}
_MIN_COUNT = 2  # every archetype appears at least this often in fleets of 200 or more
_EDGE_MIN_FLEET = 200

WINDOWS_VERSIONS = ("10.0.19045.4291", "10.0.22631.3593", "10.0.26100.2314")
PLATFORMS = (("iOS", ("17.5.1", "18.1")), ("Android", ("14.0", "15.0")), ("MacMDM", ("14.5", "15.1")))
_FIRST = ("Alex", "Sam", "Kim", "Noor", "Lea", "Omar", "Ivy", "Jon", "Mia", "Raj", "Ana", "Tom", "Zoe", "Ben", "Eva", "Li")
_LAST = ("Meyer", "Okafor", "Silva", "Novak", "Haddad", "Larsen", "Tanaka", "Garcia", "Kowal", "Dubois", "Rossi", "Berg")
_STALE_BUCKETS = ((95, 120), (120, 180), (180, 365), (365, 730), (730, 1100))
_NAME_SPACE = 16**7
_PLATFORM_VERSIONS = dict(PLATFORMS)
_ENROLLMENT = {"AzureAd": "windowsAzureADJoin", "Workplace": "userEnrollment"}
# base64 of the UTF-16LE text "X509:<SHA1-TP-PUBKEY>": 42 bytes, a multiple of 3, so a key is this + base64(rest).
_X509_PREFIX = base64.b64encode("X509:<SHA1-TP-PUBKEY>".encode("utf-16-le")).decode()


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
    onprem_sid: dict[int, str]  # hybrid device index -> on-premises SID (kept after delete, for re-sync)
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
        self.onprem_sid: dict[int, str] = {}
        self.name_mul = rng.randrange(_NAME_SPACE) | 1  # odd, so index -> name is a bijection: no accidental duplicates
        self.name_add = rng.randrange(_NAME_SPACE)
        self.domain_sid = (
            f"S-1-5-21-{rng.randrange(10**9, 4 * 10**9)}-{rng.randrange(10**9, 4 * 10**9)}-{rng.randrange(10**8, 10**9)}"
        )
        self.counters: dict[str, int] = {}
        self.dup_plan: dict[int, tuple[str, int, int, str]] = {}
        self.protected_direct: list[int] = []
        self.protected_nested: list[int] = []
        self.users: list[User] = []
        self.regular_users = range(0)

    # ------------------------------------------------------------------ top level

    def build(self) -> Fleet:
        self._make_users()
        slots = self._slots()
        self.rng.shuffle(slots)
        self._plan_duplicates(slots)
        recipes = self._recipes()
        for position, slot in enumerate(slots):
            recipes[slot.split(".", 1)[0] if slot.startswith(tuple(_GROUP_ROLES)) else slot](position)
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
            slots = [s for s in slots if not s.startswith(tuple(_GROUP_ROLES))][: self.n]
        slots.extend(["aad_win"] * (self.n - len(slots)))
        return slots

    def _plan_duplicates(self, slots: list[str]) -> None:
        """Link the shuffled duplicate slots into groups: one name, the newest object signed in last."""
        rng, now = self.rng, self.now
        for kind, roles in _GROUP_ROLES.items():
            news = [p for p, s in enumerate(slots) if s == f"{kind}.new"]
            olds = [p for p, s in enumerate(slots) if s == f"{kind}.old"]
            per_group = len(roles) - 1
            for k, new in enumerate(news):
                name = self._name({"dup_mobile": "iPhone-", "dup_hybrid": "WKS-"}.get(kind, "DESKTOP-"), new)
                new_signin = now - rng.randint(0, 15 * DAY)
                new_reg = new_signin - rng.randint(1 * DAY, 10 * DAY)
                self.dup_plan[new] = (name, new_signin, new_reg, "new")
                previous_reg = new_reg
                for old in olds[k * per_group : (k + 1) * per_group]:
                    # The older object: last seen before the re-join, some long enough ago to be stale too.
                    age = rng.choice(((20, 80), (95, 600)))
                    signin = min(now - rng.randint(age[0] * DAY, age[1] * DAY), previous_reg - DAY)
                    reg = signin - rng.randint(30 * DAY, 700 * DAY)
                    self.dup_plan[old] = (name, signin, reg, "old")
                    previous_reg = reg

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
        cls: str,
        flags: int,
        name: str,
        trust: str,
        os: str,
        signin: int,
        reg: int,
        enabled: bool = True,
        managed: bool | None = True,
        compliant: bool | None = None,
        physical: list[str] | None = None,
        registered: bool = True,
        sync_enabled: bool = False,
        onprem_sync: int = NULL,
        ext: dict[str, str] | None = None,
        owner: bool = True,
        bitlocker: int = 0,
        intune: int = NULL,
        sid: str | None = None,
    ) -> int:
        rng, store = self.rng, self.store
        index = len(store)
        windows = os == "Windows"
        if physical is None:
            gid = rng.getrandbits(52)
            physical = [f"[GID]:g:{gid}", f"[HWID]:h:{gid + 3}"] if registered else []
        altsec = [{"type": 2, "identityProvider": None, "key": x509_key(rng)}] if registered else []
        if trust == "ServerAd":
            sid = sid or f"{self.domain_sid}-{1100 + index}"
            self.onprem_sid[index] = sid
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
                True if sync_enabled else None,
                "RegisteredDevice",
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
        flags |= F["windows"] if windows else F["non_windows"]
        if trust == "ServerAd":
            flags |= F["hybrid"]
        if managed is not True:
            flags |= F["not_managed"]
        if signin == NULL:
            flags |= F["signin_blank"]
        elif self.now - signin > 90 * DAY:
            flags |= F["signin_old"]
        elif signin > self.now:
            flags |= F["future_signin"]
        if not enabled:
            flags |= F["disabled"]
        if owner_index >= 0:
            flags |= F["has_owner"]
        if bitlocker:
            flags |= F["bitlocker"]
        if intune != NULL:
            flags |= F["intune"]
            if self.now - intune <= 30 * DAY:
                flags |= F["intune_recent"]
        self.truth.record(cls, flags, archetype)
        return index

    def _windows_extras(self, signin: int, managed: bool = True) -> dict[str, Any]:
        """BitLocker keys (most Windows devices) and an Intune record (managed ones)."""
        roll = self.rng.random()
        return {
            "bitlocker": 2 if roll < 0.1 else 1 if roll < 0.7 else 0,
            "intune": self._intune_after(signin) if managed else NULL,
        }

    # ------------------------------------------------------------------ recipes

    def _recipes(self) -> dict[str, Callable[[int], Any]]:
        return {
            "aad_win": lambda p: self._aad_win(p, "aad_win", "healthy", self._ago(0, 85)),
            "aad_win_stale": lambda p: self._aad_win(p, "aad_win_stale", "stale", self._stale_signin()),
            "aad_win_unmanaged": self._aad_unmanaged,
            "wp_win": lambda p: self._wp_win(p, "wp_win", "healthy", self._ago(0, 85)),
            "wp_win_stale": lambda p: self._wp_win(p, "wp_win_stale", "stale", self._stale_signin()),
            "mobile": lambda p: self._mobile(p, "mobile", "healthy", self._ago(0, 85)),
            "mobile_stale": self._mobile_stale,
            "hybrid": lambda p: self._hybrid(p, "hybrid", "healthy", self._ago(0, 85)),
            "hybrid_stale": lambda p: self._hybrid(p, "hybrid_stale", "stale", self._stale_signin()),
            "pending_new": lambda p: self._pending(p, "pending_new", "pending", self._ago(0, 12)),
            "pending_stuck": lambda p: self._pending(p, "pending_stuck", "pending", self._ago(16, 400)),
            "autopilot": self._autopilot,
            "kiosk": self._kiosk,
            "pgroup": self._pgroup,
            "blank_recent": self._blank_recent,
            "blank_old": self._blank_old,
            "disabled_other": self._disabled_other,
            "janitor_expired": lambda p: self._janitor_disabled(p, "janitor_expired", self._ago(33, 400)),
            "janitor_recent": lambda p: self._janitor_disabled(p, "janitor_recent", self._ago(1, 27)),
            "dup2": self._duplicate,
            "dup3": self._duplicate,
            "dup_mobile": self._duplicate,
            "dup_hybrid": self._duplicate,
            "edge.stale_just": lambda p: self._aad_win(
                p, "edge.stale_just", "stale", self.now - 90 * DAY - DAY // 2, F["edge_case"]
            ),
            "edge.fresh_just": lambda p: self._aad_win(
                p, "edge.fresh_just", "healthy", self.now - 90 * DAY + DAY // 2, F["edge_case"]
            ),
            "edge.future_signin": lambda p: self._aad_win(p, "edge.future_signin", "healthy", self.now + 600, F["edge_case"]),
            "edge.expired_just": lambda p: self._janitor_disabled(
                p, "edge.expired_just", self.now - 30 * DAY - DAY // 2, F["edge_case"]
            ),
            "edge.recent_just": lambda p: self._janitor_disabled(
                p, "edge.recent_just", self.now - 30 * DAY + DAY // 2, F["edge_case"]
            ),
            "edge.blank_just": self._edge_blank_just,
            "edge.malformed_tag": self._edge_malformed_tag,
            "edge.pending_odd_key": self._edge_pending_odd_key,
            "edge.unmanaged_null": self._edge_unmanaged_null,
        }

    def _aad_win(
        self,
        p: int,
        archetype: str,
        cls: str,
        signin: int,
        flags: int = 0,
        name: str | None = None,
        *,
        reg: int | None = None,
        managed: bool = True,
    ) -> int:
        """An Entra joined Windows device; registered before its sign-in unless `reg` says when."""
        return self._add(
            archetype=archetype,
            cls=cls,
            flags=flags,
            name=name or self._name("DESKTOP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(min(signin, self.now)) if reg is None else reg,
            managed=managed,
            **self._windows_extras(signin, managed),
        )

    def _aad_unmanaged(self, p: int) -> int:
        return self._aad_win(p, "aad_win_unmanaged", "unmanaged", self._ago(0, 85), managed=False)

    def _wp_win(self, p: int, archetype: str, cls: str, signin: int) -> int:
        managed = self.rng.random() < 0.3
        return self._add(
            archetype=archetype,
            cls=cls,
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
        cls: str,
        signin: int,
        flags: int = 0,
        ext: dict[str, str] | None = None,
        name: str | None = None,
        reg: int | None = None,
        os: str | None = None,
    ) -> int:
        if os is None:
            roll = self.rng.random()
            os = "iOS" if roll < 0.5 else "Android" if roll < 0.85 else "MacMDM"
        managed = self.rng.random() < 0.6
        prefix = {"iOS": "iPhone-", "Android": "Android-", "MacMDM": "MacBook-"}[os]
        return self._add(
            archetype=archetype,
            cls=cls,
            flags=flags,
            name=name or self._name(prefix, p),
            trust="Workplace",
            os=os,
            signin=signin,
            reg=reg if reg is not None else self._reg_before(signin),
            managed=managed,
            physical=[f"[USER-GID]:{self.rng.getrandbits(64):016x}"],
            ext=ext,
            intune=self._intune_after(signin) if managed else NULL,
        )

    def _mobile_stale(self, p: int) -> int:
        signin = self._stale_signin()
        tagged = self._cycle("mobile_stale", ("plain", "plain", "tagged")) == "tagged"
        ext = self._tag("tagged", self._ago(1, 60)) if tagged else None
        return self._mobile(p, "mobile_stale", "stale", signin, F["tagged_by_janitor"] if tagged else 0, ext)

    def _hybrid(
        self, p: int, archetype: str, cls: str, signin: int, flags: int = 0, name: str | None = None, reg: int | None = None
    ) -> int:
        managed = self.rng.random() < 0.5
        return self._add(
            archetype=archetype,
            cls=cls,
            flags=flags,
            name=name or self._name("WKS-", p),
            trust="ServerAd",
            os="Windows",
            signin=signin,
            reg=reg if reg is not None else self._reg_before(signin),
            managed=managed,
            sync_enabled=True,
            onprem_sync=self._ago(0, 3),
            owner=False,
            **self._windows_extras(signin, managed),
        )

    def _pending(
        self,
        p: int,
        archetype: str,
        cls: str,
        synced: int,
        flags: int = 0,
        altsec_text: str | None = None,
        name: str | None = None,
        sid: str | None = None,
    ) -> int:
        """A hybrid computer Entra Connect synced that never registered: age is onPremisesLastSyncDateTime."""
        if self.now - synced > 14 * DAY:
            flags |= F["pending_stuck"]
        index = self._add(
            archetype=archetype,
            cls=cls,
            flags=flags | F["pending"],
            name=name or self._name("PC-", p),
            trust="ServerAd",
            os="Windows",
            signin=NULL,
            reg=NULL,
            managed=None,
            registered=False,
            sync_enabled=True,
            onprem_sync=synced,
            owner=False,
            sid=sid,
        )
        if altsec_text is not None:  # an entry that is not an X509 key: still pending
            device = self.store.full(index)
            device["alternativeSecurityIds"] = [
                {"type": 2, "identityProvider": None, "key": base64.b64encode(altsec_text.encode("utf-16-le")).decode()}
            ]
            self.store.put(index, device)
        return index

    def _autopilot(self, p: int) -> int:
        state = self._cycle("autopilot", ("ok", "stale", "ok", "expired", "ok", "unmanaged", "ok", "ok", "stale", "ok"))
        rng = self.rng
        signin = self._stale_signin() if state in ("stale", "expired") else self._ago(0, 85)
        physical = [f"[ZTDID]:{rng.getrandbits(128):032x}", f"[GID]:g:{rng.getrandbits(52)}", f"[HWID]:h:{rng.getrandbits(52)}"]
        managed = state != "unmanaged"
        enabled, ext, flags = True, None, F["autopilot"]
        if state == "expired":
            enabled, ext, flags = False, self._tag("disabled", self._ago(40, 300)), flags | F["disabled_by_janitor"]
        return self._add(
            archetype="autopilot",
            cls="protected",
            flags=flags,
            name=self._name("CORP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(signin),
            managed=managed,
            physical=physical,
            enabled=enabled,
            ext=ext,
            owner=rng.random() < 0.5,
            **self._windows_extras(signin, managed),
        )

    def _kiosk(self, p: int) -> int:
        state = self._cycle("kiosk", ("ok", "stale", "ok", "blank"))
        signin = {"ok": self._ago(0, 85), "stale": self._stale_signin(), "blank": NULL}[state]
        reg = self._ago(100, 900) if signin == NULL else self._reg_before(signin)
        return self._add(
            archetype="kiosk",
            cls="protected",
            flags=F["protected_name"],
            name=self._name("KIOSK-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=reg,
            owner=False,
            **self._windows_extras(signin),
        )

    def _pgroup(self, p: int) -> int:
        state = self._cycle("pgroup", ("stale", "pending", "ok", "expired", "hybrid_stale", "unmanaged"))
        nested = self.counters["pgroup"] % 3 == 2  # the 2nd, 5th, ... member sits in the nested group
        flags = F["protected_group"] | (F["protected_group_nested"] if nested else 0)
        if state == "pending":
            index = self._pending(p, "pgroup", "protected", self._ago(20, 200), flags)
        elif state == "hybrid_stale":
            index = self._hybrid(p, "pgroup", "protected", self._stale_signin(), flags)
        elif state == "expired":
            index = self._janitor_disabled(p, "pgroup", self._ago(40, 300), flags, cls="protected")
        elif state == "unmanaged":
            signin = self._ago(0, 85)
            index = self._add(
                archetype="pgroup",
                cls="protected",
                flags=flags,
                name=self._name("DESKTOP-", p),
                trust="AzureAd",
                os="Windows",
                signin=signin,
                reg=self._reg_before(signin),
                managed=False,
            )
        else:
            signin = self._stale_signin() if state == "stale" else self._ago(0, 85)
            index = self._aad_win(p, "pgroup", "protected", signin, flags)
        (self.protected_nested if nested else self.protected_direct).append(index)
        return index

    def _blank_recent(self, p: int) -> int:
        return self._aad_win_blank(p, "blank_recent", "healthy", self._ago(0, 80))

    def _blank_old(self, p: int) -> int:
        kind = self._cycle("blank_old", ("aad", "mobile", "hybrid"))
        reg = self._ago(95, 1000)
        if kind == "mobile":
            return self._mobile(p, "blank_old", "no_signin_record", NULL, reg=reg)
        if kind == "hybrid":
            return self._hybrid(p, "blank_old", "no_signin_record", NULL, reg=reg)
        return self._aad_win_blank(p, "blank_old", "no_signin_record", reg)

    def _aad_win_blank(self, p: int, archetype: str, cls: str, reg: int, flags: int = 0) -> int:
        return self._aad_win(p, archetype, cls, NULL, flags, reg=reg)

    def _disabled_other(self, p: int) -> int:
        """Disabled by an administrator (not by us): never a candidate, whatever its age."""
        foreign = self._cycle("disabled_other", ("none", "none", "foreign")) == "foreign"
        signin = self._ago(10, 600)
        ext = {TAG_ATTRIBUTE: f"Disabled by helpdesk, ticket INC{self.rng.randrange(10**6, 10**7)}"} if foreign else None
        return self._add(
            archetype="disabled_other",
            cls="healthy",
            flags=F["foreign_tag"] if foreign else 0,
            name=self._name("DESKTOP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(signin),
            enabled=False,
            ext=ext,
            **self._windows_extras(signin),
        )

    def _janitor_disabled(self, p: int, archetype: str, tagged_at: int, flags: int = 0, cls: str | None = None) -> int:
        """Disabled by entra-janitor at `tagged_at`: a delete candidate once 30 days have passed.

        Delete candidates rotate through the delete gates' cases: BitLocker keys, a recent Intune sync, none.
        """
        expired = self.now - tagged_at >= 30 * DAY
        signin = min(tagged_at - self.rng.randint(91 * DAY, 400 * DAY), tagged_at)
        variant = self._cycle("janitor_disabled", ("keys", "intune_recent", "plain", "keys_intune_old"))
        bitlocker = 1 if "keys" in variant else 0
        intune = NULL
        if variant == "intune_recent":
            intune = self._ago(0, 10)
        elif variant == "keys_intune_old":
            intune = min(signin + DAY, self.now - 60 * DAY)
        return self._add(
            archetype=archetype,
            cls=cls or ("expired_disabled" if expired else "healthy"),
            flags=flags | F["disabled_by_janitor"],
            name=self._name("DESKTOP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(signin),
            enabled=False,
            ext=self._tag("disabled", tagged_at),
            bitlocker=bitlocker,
            intune=intune,
        )

    def _duplicate(self, p: int) -> int:
        name, signin, reg, role = self.dup_plan[p]
        flags = F["duplicate_newer"] if role == "new" else F["duplicate_older"]
        cls = "healthy" if role == "new" else "duplicate"
        if name.startswith("iPhone-"):
            return self._mobile(p, "dup_mobile", cls, signin, flags, name=name, reg=reg, os="iOS")
        if name.startswith("WKS-"):
            return self._hybrid(p, "dup_hybrid", cls, signin, flags, name=name, reg=reg)
        return self._add(
            archetype="dup",
            cls=cls,
            flags=flags,
            name=name,
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=reg,
            **self._windows_extras(signin),
        )

    def _edge_blank_just(self, p: int) -> int:
        return self._aad_win_blank(p, "edge.blank_just", "no_signin_record", self.now - 90 * DAY - DAY // 2, F["edge_case"])

    def _edge_malformed_tag(self, p: int) -> int:
        signin = self._ago(200, 400)
        return self._add(
            archetype="edge.malformed_tag",
            cls="healthy",
            flags=F["edge_case"] | F["foreign_tag"],
            name=self._name("DESKTOP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(signin),
            enabled=False,
            ext={TAG_ATTRIBUTE: "entra-janitor|disabled|last week|stale|run-0"},
        )

    def _edge_pending_odd_key(self, p: int) -> int:
        return self._pending(p, "edge.pending_odd_key", "pending", self._ago(20, 60), F["edge_case"], "RSA:<PUBKEY>0F3A")

    def _edge_unmanaged_null(self, p: int) -> int:
        signin = self._ago(0, 60)
        return self._add(
            archetype="edge.unmanaged_null",
            cls="unmanaged",
            flags=F["edge_case"],
            name=self._name("DESKTOP-", p),
            trust="AzureAd",
            os="Windows",
            signin=signin,
            reg=self._reg_before(signin),
            managed=None,
        )

    # ------------------------------------------------------------------ devices added after generation

    def add_pending_copy(self, name: str, sid: str, synced: int) -> int:
        """A hybrid computer synced back after its Entra object was deleted: a new pending object, same SID."""
        return self._pending(len(self.store), "recreated_by_sync", "pending", synced, F["recreated_by_sync"], name=name, sid=sid)

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
