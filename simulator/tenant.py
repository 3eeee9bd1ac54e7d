"""A simulated Entra ID tenant: the fleet, its directory, ground truth, and what was written to it.

The HTTP layer (`simulator.api`) reads and writes a Tenant; tests read it directly to check what a
client did (`writes`, `outbox`) and to change the tenant behind the client's back (a device signs in, an
admin deletes it, Entra Connect syncs a deleted hybrid device back).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulator import timefmt
from simulator.devicestore import EXT_FIELD, EXT_KEYS, DeviceStore
from simulator.directory import Group, JoinMode, User
from simulator.fleet import DOMAIN, Fleet, FleetBuilder, build_fleet
from simulator.timefmt import NULL
from simulator.truth import CLASS_CODE, GroundTruth, flag_mask

#: Device soft delete (preview; Microsoft Learn, device management docs dated 2026-04): a deleted Entra joined or
#: registered device stays in deleted items this many days (restorable through Graph beta directory/deletedItems,
#: its deviceId reserved, GET /devices/{id} answering 404), then is gone for good. Hybrid joined (ServerAd)
#: objects never go there: they are deleted for good at once.
DELETED_ITEMS_DAYS = 30
HYBRID_TRUST_TYPE = "ServerAd"


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One write a client made to a device through Graph (PATCH or DELETE)."""

    method: str
    object_id: str
    body: Mapping[str, Any] | None
    at: datetime
    status: int
    request_id: str
    caller: str  # app id from the bearer token, or "anonymous"
    error_code: str | None = None


class Tenant:
    """The simulated tenant. Build one with `Tenant.generate(...)`."""

    def __init__(self, fleet: Fleet, *, seed: int, profile: str, now: datetime) -> None:
        self._fleet = fleet
        self.seed = seed
        self.profile = profile
        self.now = now
        self.devices: DeviceStore = fleet.store
        self.truth: GroundTruth = fleet.truth
        self.users: list[User] = fleet.users
        self.groups = fleet.groups.items
        self.group_index = fleet.groups
        self.policy = fleet.policy
        self.admin_upn = fleet.admin_upn
        self.sender_upn = fleet.sender_upn
        self.protected_group_id = fleet.protected_group_id
        self.nested_protected_group_id = fleet.nested_protected_group_id
        self.join_group_id = fleet.join_group_id
        self.lab_group_id = fleet.lab_group_id
        self.heavy_users = fleet.heavy_users
        self.domain = DOMAIN
        self.tenant_id = str(uuid.UUID(int=(seed * 0x9E3779B97F4A7C15) % (1 << 128), version=4))
        self.writes: list[WriteRecord] = []  # successful device writes
        self.write_attempts: list[WriteRecord] = []  # every device write, refused ones included
        self.outbox: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self._user_by_key: dict[str, int] = {}
        for i, user in enumerate(self.users):
            self._user_by_key[user.id.lower()] = i
            self._user_by_key[user.user_principal_name.lower()] = i
        self._devices_by_owner: dict[int, list[int]] | None = None
        self._resynced: set[int] = set()
        self.conditional_access_policies: list[dict[str, Any]] = []  # none unless a test adds them
        #: The tenant's clock for what happens over time (deleted items expire); tests replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._deleted_at: dict[int, int] = {}  # device index -> epoch of its soft delete (in deleted items)

    @classmethod
    def generate(
        cls,
        devices: int = 20_000,
        seed: int = 7,
        now: datetime | None = None,
        profile: str = "mixed",
        *,
        user_device_quota: int = 50,
        join_policy: JoinMode = "selected",
    ) -> Tenant:
        """A seeded fleet. `now` (default: the current time) is the moment ages are measured from.

        profile: "mixed" (realistic), "stale20" (20 % stale, for blast-radius tests) or "clean" (nothing to do).
        """
        moment = now or datetime.now(UTC)
        moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).replace(microsecond=0)
        fleet = build_fleet(
            devices=devices, seed=seed, now=timefmt.epoch(moment), profile=profile, user_device_quota=user_device_quota
        )
        tenant = cls(fleet, seed=seed, profile=profile, now=moment)
        if join_policy != "selected":
            tenant.set_join_policy(join_policy)
        return tenant

    # ------------------------------------------------------------------ what tests read

    def reference_policy(self) -> dict[str, Any]:
        """The policy (YAML-shaped) the ground truth is computed for: safe defaults plus this tenant's protections."""
        return {
            "mode": "report",
            "stale": {"disable_after_days": 90, "delete_after_disabled_days": 30, "platforms": {}},
            "pending": {"stuck_after_days": 14},
            "protect": {"autopilot": True, "name_patterns": ["KIOSK-*"], "groups": [self.protected_group_id]},
            "limits": {"max_destructive_per_run": 500, "max_destructive_fraction": 0.05},
        }

    @property
    def device_count(self) -> int:
        """Devices that exist now (deleted ones excluded)."""
        return self.devices.live_count

    def object_ids(self) -> list[str]:
        """Object ids of every device that exists now, in paging order."""
        store = self.devices
        return [store.object_id(i) for i in range(len(store)) if not store.deleted[i]]

    def device_json(self, object_id: str) -> dict[str, Any] | None:
        """The device as Graph returns it with every property selected (after writes); None if deleted."""
        index = self.devices.find(object_id)
        return None if index is None else self.devices.full(index)

    def device_index(self, key: str) -> int | None:
        """Index of a live device by object id or deviceId."""
        index = self.devices.find(key)
        return index if index is not None else self.devices.find_by_device_id(key)

    def find_user(self, key: str) -> int | None:
        """Index of a user by object id or userPrincipalName (any case)."""
        return self._user_by_key.get(key.lower())

    def user(self, key: str) -> User | None:
        index = self.find_user(key)
        return None if index is None else self.users[index]

    def owner_of(self, object_id: str) -> User | None:
        """The device's registered owner (hybrid and shared devices have none)."""
        index = self.devices.find(object_id, include_deleted=True)
        if index is None:
            raise KeyError(f"no device has object id {object_id!r}")
        owner = self._fleet.owners[index]
        return None if owner < 0 else self.users[owner]

    def devices_of_user(self, user_key: str) -> list[str]:
        """Object ids of the live devices a user registered or joined (what counts against the quota)."""
        user = self.find_user(user_key)
        if user is None:
            raise KeyError(f"no user {user_key!r}")
        return [self.devices.object_id(i) for i in self.device_indexes_of_user(user)]

    def device_indexes_of_user(self, user: int) -> list[int]:
        if self._devices_by_owner is None:
            by_owner: dict[int, list[int]] = {}
            for i, owner in enumerate(self._fleet.owners):
                if owner >= 0:
                    by_owner.setdefault(owner, []).append(i)
            self._devices_by_owner = by_owner
        return [i for i in self._devices_by_owner.get(user, ()) if not self.devices.deleted[i]]

    def bitlocker_keys(self, index: int) -> list[dict[str, Any]]:
        """Recovery key metadata of a device (the keys themselves are never returned)."""
        device_id = self.devices.device_id(index)
        created = timefmt.iso(self.devices.registered[index]) or timefmt.iso(timefmt.epoch(self.now))
        return [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{device_id}:{k}")),
                "createdDateTime": created,
                "volumeType": "1",
                "deviceId": device_id,
            }
            for k in range(self._fleet.bitlocker[index])
        ]

    def intune_record(self, index: int) -> dict[str, Any] | None:
        """The Intune managedDevice of a device (kept after the Entra object is deleted, as Intune does)."""
        last_sync = self._fleet.intune_sync[index]
        if last_sync == NULL:
            return None
        fields = self.devices.profile_fields(index)
        owner = self._fleet.owners[index]
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.devices.device_id(index))),
            "deviceName": self.devices.names[index],
            "azureADDeviceId": self.devices.device_id(index),
            "azureADRegistered": True,
            "lastSyncDateTime": timefmt.iso(last_sync),
            "enrolledDateTime": timefmt.iso(self.devices.registered[index]),
            "operatingSystem": fields["operatingSystem"],
            "osVersion": fields["operatingSystemVersion"],
            "complianceState": "compliant" if fields["isCompliant"] else "noncompliant",
            "managementAgent": "mdm",
            "userPrincipalName": self.users[owner].user_principal_name if owner >= 0 else None,
        }

    def find_intune(self, device_id: str) -> int | None:
        return self.devices.find_by_device_id(device_id, include_deleted=True)

    def laps_present(self, index: int) -> bool:
        """Whether a Windows LAPS password is stored for the device (deleting the device deletes it too)."""
        laps = self._fleet.laps
        return index < len(laps) and bool(laps[index]) and not self.devices.deleted[index]

    def laps_info(self, index: int) -> dict[str, Any] | None:
        """deviceLocalCredentialInfo metadata as Graph v1.0 returns it without $select=credentials; None when none."""
        if not self.laps_present(index):
            return None
        backed_up = max(self.devices.registered[index], self.devices.signin[index])
        stamp = timefmt.iso(backed_up) if backed_up != NULL else timefmt.iso(timefmt.epoch(self.now))
        return {
            "id": self.devices.device_id(index),  # Graph keys LAPS by deviceId, not by the object id
            "deviceName": self.devices.names[index],
            "lastBackupDateTime": stamp,
            "refreshDateTime": stamp,
        }

    # ------------------------------------------------------------------ changes made through Graph (by clients)

    def patch_device(self, index: int, body: Mapping[str, Any]) -> None:
        """Apply a validated PATCH body: accountEnabled, and extensionAttributes merged key by key."""
        with self.lock:
            device = self.devices.full(index)
            if "accountEnabled" in body:
                device["accountEnabled"] = body["accountEnabled"]
            if EXT_FIELD in body:
                merged = dict(device[EXT_FIELD])
                merged.update(body[EXT_FIELD])
                device[EXT_FIELD] = merged
            self.devices.put(index, device)

    def remove_device(self, index: int) -> None:
        """Delete a device: an Entra joined or registered one goes to deleted items, a hybrid one is gone for good."""
        with self.lock:
            if self.devices.deleted[index]:
                return
            hybrid = self.devices.profile_fields(index)["trustType"] == HYBRID_TRUST_TYPE
            self.devices.delete(index)
            if not hybrid:
                self._deleted_at[index] = timefmt.epoch(self.clock())

    # ------------------------------------------------------------------ deleted items (device soft delete)

    def deleted_indexes(self) -> list[int]:
        """Devices in deleted items now (deleted less than DELETED_ITEMS_DAYS ago), in store order."""
        with self.lock:
            self._expire_deleted()
            return sorted(self._deleted_at)

    def deleted_index(self, object_id: str) -> int | None:
        """The device with this object id if it is in deleted items now, else None (live, purged, hybrid, unknown)."""
        index = self.devices.find(object_id, include_deleted=True)
        if index is None or not self.devices.deleted[index]:
            return None
        with self.lock:
            self._expire_deleted()
            return index if index in self._deleted_at else None

    def deleted_at(self, index: int) -> datetime | None:
        """When a device in deleted items was deleted (None when it is not there)."""
        stamp = self._deleted_at.get(index)
        return None if stamp is None else datetime.fromtimestamp(stamp, UTC)

    def restore_device(self, index: int) -> None:
        """Bring a device back from deleted items: same id and deviceId, isCompliant false until it checks in."""
        with self.lock:
            if self._deleted_at.pop(index, None) is None:
                raise KeyError(f"device {index} is not in deleted items")
            self.devices.undelete(index)
            device = self.devices.full(index)
            device["isCompliant"] = False
            self.devices.put(index, device)
            self._devices_by_owner = None

    def _expire_deleted(self) -> None:
        """Deleted items older than DELETED_ITEMS_DAYS are gone for good."""
        horizon = timefmt.epoch(self.clock()) - DELETED_ITEMS_DAYS * timefmt.DAY
        for index in [i for i, stamp in self._deleted_at.items() if stamp <= horizon]:
            del self._deleted_at[index]

    def record_write(self, record: WriteRecord) -> None:
        self.write_attempts.append(record)
        if record.status < 300:
            self.writes.append(record)

    # ------------------------------------------------------------------ changes made behind the client's back

    def update_device(self, object_id: str, **properties: Any) -> None:
        """Change a device out of band (an admin or the device itself), e.g. `approximateLastSignInDateTime=dt`.

        Keys are Graph property names; datetimes may be given as aware datetimes. Not recorded in `writes`.
        """
        index = self._live(object_id)
        with self.lock:
            device = self.devices.full(index)
            for name, value in properties.items():
                if name not in device:
                    raise KeyError(f"unknown device property {name!r}")
                device[name] = timefmt.iso(timefmt.epoch(value)) if isinstance(value, datetime) else value
            self.devices.put(index, device)

    def sign_in(self, object_id: str, at: datetime | None = None) -> None:
        """The device signs in (approximateLastSignInDateTime moves to `at`, default now)."""
        self.update_device(object_id, approximateLastSignInDateTime=at or datetime.now(UTC))

    def delete_device(self, object_id: str) -> None:
        """An administrator deletes the device (not recorded in `writes`)."""
        self.remove_device(self._live(object_id))

    def set_bitlocker_keys(self, object_id: str, count: int) -> None:
        self._fleet.bitlocker[self._any(object_id)] = count

    def set_laps(self, key: int | str, present: bool = True) -> None:
        """Store (or remove) a Windows LAPS password for a device, by index, object id or deviceId."""
        if isinstance(key, int):
            index = key
        else:
            found = self.devices.find(key, include_deleted=True)
            index = found if found is not None else self.devices.find_by_device_id(key, include_deleted=True)
            if index is None:
                raise KeyError(f"no device has object id or deviceId {key!r}")
        if not 0 <= index < len(self.devices):
            raise IndexError(f"no device at index {index}")
        laps = self._fleet.laps
        if len(laps) <= index:
            laps.extend(bytes(index + 1 - len(laps)))
        laps[index] = 1 if present else 0

    def add_conditional_access_policy(
        self, display_name: str, device_filter: str | None, *, mode: str = "include", state: str = "enabled"
    ) -> str:
        """A Conditional Access policy requiring a compliant device, optionally scoped by a device filter rule."""
        policy_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tenant_id}/ca/{len(self.conditional_access_policies)}"))
        stamp = timefmt.iso(timefmt.epoch(self.now))
        devices = {"deviceFilter": {"mode": mode, "rule": device_filter}} if device_filter is not None else None
        self.conditional_access_policies.append(
            {
                "id": policy_id,
                "templateId": None,
                "displayName": display_name,
                "description": None,
                "createdDateTime": stamp,
                "modifiedDateTime": None,
                "state": state,
                "sessionControls": None,
                "conditions": {
                    "userRiskLevels": [],
                    "signInRiskLevels": [],
                    "clientAppTypes": ["all"],
                    "servicePrincipalRiskLevels": [],
                    "insiderRiskLevels": None,
                    "platforms": None,
                    "locations": None,
                    "clientApplications": None,
                    "authenticationFlows": None,
                    "devices": devices,
                    "applications": {
                        "includeApplications": ["All"],
                        "excludeApplications": [],
                        "includeUserActions": [],
                        "includeAuthenticationContextClassReferences": [],
                        "applicationFilter": None,
                    },
                    "users": {
                        "includeUsers": ["All"],
                        "excludeUsers": [],
                        "includeGroups": [],
                        "excludeGroups": [],
                        "includeRoles": [],
                        "excludeRoles": [],
                        "includeGuestsOrExternalUsers": None,
                        "excludeGuestsOrExternalUsers": None,
                    },
                },
                "grantControls": {
                    "operator": "OR",
                    "builtInControls": ["compliantDevice"],
                    "customAuthenticationFactors": [],
                    "termsOfUse": [],
                    "authenticationStrength": None,
                },
            }
        )
        return policy_id

    def add_dynamic_group(self, display_name: str, membership_rule: str) -> str:
        """A security group with dynamic membership (its members are not computed: only the rule is served)."""
        group_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tenant_id}/dynamic/{display_name}"))
        self.group_index.add(
            Group(
                id=group_id,
                display_name=display_name,
                description="Dynamic device group",
                group_types=["DynamicMembership"],
                membership_rule=membership_rule,
            )
        )
        return group_id

    def seed_tag_rules(self, attribute: int = 15) -> None:
        """The tenant-side rules `janitor doctor` looks for: one CA filter and one dynamic group reading
        extensionAttribute<attribute>, and one of each that reads something else."""
        self.add_conditional_access_policy(
            "Kiosks: require compliant device", f'device.extensionAttribute{attribute} -eq "kiosk"', mode="include"
        )
        self.add_conditional_access_policy("Surface: require compliant device", 'device.model -startsWith "Surface"')
        self.add_dynamic_group("Kiosk devices", f'(device.extensionAttribute{attribute} -eq "kiosk")')
        self.add_dynamic_group("Windows devices", '(device.deviceOSType -eq "Windows")')

    def set_intune_last_sync(self, object_id: str, at: datetime | None) -> None:
        """Enrol (or re-sync) the device in Intune at `at`; None removes its Intune record."""
        self._fleet.intune_sync[self._any(object_id)] = NULL if at is None else timefmt.epoch(at)

    def set_join_policy(
        self, mode: JoinMode, *, users: Iterable[str] = (), groups: Iterable[str] = (), quota: int | None = None
    ) -> None:
        """Who may Entra join devices: "all", "selected" (these user / group ids) or "none"."""
        if mode not in ("all", "selected", "none"):
            raise ValueError(f"join policy mode must be all, selected or none, not {mode!r}")
        self.policy.join_mode = mode
        self.policy.join_users = list(users) if mode == "selected" else []
        self.policy.join_groups = list(groups) if mode == "selected" else []
        if mode == "selected" and not (self.policy.join_users or self.policy.join_groups):
            self.policy.join_groups = [self.join_group_id]
        if quota is not None:
            self.policy.user_device_quota = quota

    def sync_from_on_premises(self) -> list[str]:
        """One Entra Connect cycle: hybrid devices deleted in Entra but still in AD come back as new pending objects.

        Each returns once, with the same displayName and onPremisesSecurityIdentifier and a new id and deviceId.
        Returns the new object ids.
        """
        created = []
        with self.lock:
            sids = self._fleet.onprem_sid
            builder = self._builder
            synced = max(timefmt.epoch(self.now), timefmt.epoch(datetime.now(UTC)))
            for index in range(len(self.devices)):
                if self.devices.deleted[index] and index in sids and index not in self._resynced:
                    self._resynced.add(index)
                    new = builder.add_pending_copy(self.devices.names[index], sids[index], synced)
                    created.append(self.devices.object_id(new))
            self._devices_by_owner = None
        return created

    def add_device(
        self,
        *,
        display_name: str,
        expected_class: str,
        trust_type: str = "AzureAd",
        operating_system: str = "Windows",
        account_enabled: bool = True,
        last_sign_in: datetime | None = None,
        registered_at: datetime | None = None,
        is_managed: bool | None = True,
        registered: bool = True,
        physical_ids: list[str] | None = None,
        extension_attributes: Mapping[str, str] | None = None,
        owner: str | None = None,
        bitlocker_keys: int = 0,
        intune_last_sync: datetime | None = None,
        on_premises_last_sync: datetime | None = None,
        flags: Iterable[str] = (),
    ) -> str:
        """Add a hand-made device and state the class it should have; returns its object id.

        Hybrid devices (trust_type "ServerAd") get an on-premises SID; `registered=False` makes one pending,
        whose age is `on_premises_last_sync` (when Entra Connect created it).
        """
        if expected_class not in CLASS_CODE:
            raise ValueError(f"expected_class must be one of {', '.join(CLASS_CODE)}, not {expected_class!r}")
        unknown = set(extension_attributes or {}) - set(EXT_KEYS)
        if unknown:
            raise ValueError(f"unknown extension attributes {sorted(unknown)}; use extensionAttribute1..15")
        owner_index = -1
        if owner is not None:
            found = self.find_user(owner)
            if found is None:
                raise KeyError(f"no user {owner!r}")
            owner_index = found
        signin = NULL if last_sign_in is None else timefmt.epoch(last_sign_in)
        reg = NULL if registered_at is None else timefmt.epoch(registered_at)
        with self.lock:
            index = self._builder.add_custom(
                expected_class=expected_class,
                flags=flag_mask(*flags),
                owner_index=owner_index,
                name=display_name,
                trust=trust_type,
                os=operating_system,
                signin=signin,
                reg=reg,
                enabled=account_enabled,
                managed=is_managed,
                registered=registered,
                physical=physical_ids,
                sync_enabled=trust_type == "ServerAd",
                ext=dict(extension_attributes) if extension_attributes else None,
                bitlocker=bitlocker_keys,
                intune=NULL if intune_last_sync is None else timefmt.epoch(intune_last_sync),
                onprem_sync=NULL if on_premises_last_sync is None else timefmt.epoch(on_premises_last_sync),
            )
            self._devices_by_owner = None
        return self.devices.object_id(index)

    # ------------------------------------------------------------------ helpers

    @property
    def _builder(self) -> FleetBuilder:
        builder = self._fleet.builder
        assert builder is not None
        return builder

    def _live(self, object_id: str) -> int:
        index = self.devices.find(object_id)
        if index is None:
            raise KeyError(f"no live device has object id {object_id!r}")
        return index

    def _any(self, object_id: str) -> int:
        index = self.devices.find(object_id, include_deleted=True)
        if index is None:
            raise KeyError(f"no device has object id {object_id!r}")
        return index
