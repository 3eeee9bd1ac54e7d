"""Small typed records shared by every layer.

`Device` is what the bulk scan decodes Graph's /devices pages into (msgspec, no kiota models): field
names are Graph's camelCase on the wire and snake_case in Python.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class AlternativeSecurityId(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """One entry of alternativeSecurityIds; `key` is base64 of UTF-16LE text (`X509:...` when registered)."""

    type: int | None = None
    identity_provider: str | None = None
    key: str | None = None


_EXTENSION_NAMES: dict[int, str] = {n: f"extension_attribute{n}" for n in range(1, 16)}


class ExtensionAttributes(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """extensionAttributes 1-15 of a device (returned only when named in $select)."""

    extension_attribute1: str | None = None
    extension_attribute2: str | None = None
    extension_attribute3: str | None = None
    extension_attribute4: str | None = None
    extension_attribute5: str | None = None
    extension_attribute6: str | None = None
    extension_attribute7: str | None = None
    extension_attribute8: str | None = None
    extension_attribute9: str | None = None
    extension_attribute10: str | None = None
    extension_attribute11: str | None = None
    extension_attribute12: str | None = None
    extension_attribute13: str | None = None
    extension_attribute14: str | None = None
    extension_attribute15: str | None = None

    def get(self, number: int) -> str | None:
        """Value of extensionAttribute<number> (1-15)."""
        return getattr(self, _EXTENSION_NAMES[number])


class Device(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """A Graph v1.0 device object, reduced to what classification, gates and diagnosis read.

    `id` is the directory object id (for /devices/{id}); `device_id` is the DRS GUID (BitLocker, Intune).
    """

    id: str
    device_id: str | None = None
    display_name: str | None = None
    account_enabled: bool | None = None
    approximate_last_sign_in_date_time: datetime | None = None
    registration_date_time: datetime | None = None
    trust_type: str | None = None
    operating_system: str | None = None
    operating_system_version: str | None = None
    is_managed: bool | None = None
    is_compliant: bool | None = None
    physical_ids: list[str] = []
    alternative_security_ids: list[AlternativeSecurityId] = []
    on_premises_sync_enabled: bool | None = None
    on_premises_last_sync_date_time: datetime | None = None
    on_premises_security_identifier: str | None = None
    profile_type: str | None = None
    management_type: str | None = None
    device_ownership: str | None = None
    enrollment_type: str | None = None
    extension_attributes: ExtensionAttributes | None = None


#: The $select the bulk scan asks for: exactly the fields of `Device`.
DEVICE_SELECT: tuple[str, ...] = tuple(
    f.encode_name for f in msgspec.structs.fields(Device)
)
