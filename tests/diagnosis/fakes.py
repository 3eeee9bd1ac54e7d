"""Small in-memory stand-ins for the Graph port and device records (pure tests need no server)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.models import AlternativeSecurityId, Device, ExtensionAttributes
from shared.ports import Owner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dsregcmd"
NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
TENANT_ID = "3f7c2a91-5d4e-4b8a-9c1f-2e6d8b0a4c57"  # the TenantId in the fixtures (Contoso)

ALL = {"@odata.type": "#microsoft.graph.allDeviceRegistrationMembership"}
NONE = {"@odata.type": "#microsoft.graph.noDeviceRegistrationMembership"}


def selected(users: Sequence[str] = (), groups: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.enumeratedDeviceRegistrationMembership",
        "users": list(users),
        "groups": list(groups),
    }


def join_policy(allowed: Mapping[str, Any], quota: int = 50) -> dict[str, Any]:
    return {"userDeviceQuota": quota, "azureADJoin": {"allowedToJoin": dict(allowed)}}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def x509_key() -> str:
    return base64.b64encode("X509:<SHA1-TP-PUBKEY>AbCdEf123".encode("utf-16-le")).decode()


def device(
    name: str = "DESKTOP-1",
    *,
    device_id: str | None = None,
    trust: str = "AzureAd",
    enabled: bool = True,
    signed_in_days_ago: float | None = 3,
    registered_days_ago: float | None = 400,
    registered: bool = True,
    os: str = "Windows",
    managed: bool | None = True,
    compliant: bool | None = True,
    physical_ids: Sequence[str] = (),
    ext15: str | None = None,
    object_id: str | None = None,
) -> Device:
    """A device record; `registered=False` leaves alternativeSecurityIds empty (pending, for hybrid)."""
    return Device(
        id=object_id or str(uuid.uuid4()),
        device_id=device_id or str(uuid.uuid4()),
        display_name=name,
        account_enabled=enabled,
        approximate_last_sign_in_date_time=None if signed_in_days_ago is None else NOW - timedelta(days=signed_in_days_ago),
        registration_date_time=None if registered_days_ago is None else NOW - timedelta(days=registered_days_ago),
        trust_type=trust,
        operating_system=os,
        is_managed=managed,
        is_compliant=compliant,
        physical_ids=list(physical_ids),
        alternative_security_ids=[AlternativeSecurityId(type=2, key=x509_key())] if registered else [],
        extension_attributes=ExtensionAttributes(extension_attribute15=ext15) if ext15 else None,
        on_premises_sync_enabled=True if trust == "ServerAd" else None,  # hybrid objects come from Entra Connect
    )


class FakeGraph:
    """The read side of GraphPort over lists held in memory. Counts calls so tests can see what was read."""

    def __init__(
        self,
        devices: Sequence[Device] = (),
        *,
        users: Sequence[Owner] = (),
        owners: Mapping[str, Sequence[Owner]] | None = None,
        policy: Mapping[str, Any] | None = None,
        memberships: Mapping[str, set[str]] | None = None,
        user_devices: Mapping[str, Sequence[Device]] | None = None,
        intune: Mapping[str, datetime] | None = None,
    ) -> None:
        self.devices = list(devices)
        self.users = list(users)
        self.owners = dict(owners or {})
        self.policy = dict(policy or join_policy(ALL))
        self.memberships = dict(memberships or {})
        self.user_devices = dict(user_devices or {})
        self.intune = dict(intune or {})
        self.calls: list[str] = []
        self.closed = False

    async def find_devices(self, name_or_id: str) -> list[Device]:
        self.calls.append(f"find_devices {name_or_id}")
        key = name_or_id.strip().lower()
        return [d for d in self.devices if key in (d.id.lower(), (d.device_id or "").lower(), (d.display_name or "").lower())]

    async def get_device(self, object_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == object_id), None)

    async def registered_owners(self, object_id: str) -> list[Owner]:
        return list(self.owners.get(object_id, []))

    async def get_user(self, user: str) -> Owner | None:
        key = user.lower()
        return next((u for u in self.users if key in (u.id.lower(), (u.user_principal_name or "").lower())), None)

    async def check_member_groups(self, user_id: str, group_ids: Sequence[str]) -> set[str]:
        return set(group_ids) & self.memberships.get(user_id, set())

    async def device_registration_policy(self) -> Mapping[str, Any]:
        return self.policy

    async def user_registered_devices(self, user_id: str) -> list[Device]:
        return list(self.user_devices.get(user_id, []))

    async def managed_device_last_sync(self, device_id: str) -> datetime | None:
        return self.intune.get(device_id)

    async def bitlocker_key_ids(self, device_id: str) -> list[str]:
        return []

    async def close(self) -> None:
        self.closed = True


def user(upn: str = "ana@contoso.com") -> Owner:
    return Owner(id=str(uuid.uuid5(uuid.NAMESPACE_DNS, upn)), display_name=upn.split("@")[0], user_principal_name=upn, mail=upn)
