"""Which Microsoft Graph application permission each endpoint the project calls needs.

The one table of record: the gateway names the missing permission when Graph answers 403, and
`janitor doctor`, the grant script and the docs read the same rows instead of keeping their own lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Graph call: method, path template (relative to /v1.0) and the application permissions it needs."""

    key: str
    method: str
    path: str
    permissions: tuple[str, ...]
    need: str  # what the project uses it for, in words a person granting consent understands
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"(\{[^}]+\})", self.path)
        regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        object.__setattr__(self, "pattern", re.compile(f"{regex}/?", re.IGNORECASE))

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == self.method and self.pattern.fullmatch(path) is not None


_ROWS: tuple[Endpoint, ...] = (
    Endpoint("list_devices", "GET", "/devices", ("Device.Read.All",), "list and read devices"),
    Endpoint("get_device", "GET", "/devices/{id}", ("Device.Read.All",), "read one device"),
    Endpoint(
        "get_device_by_device_id", "GET", "/devices(deviceId='{deviceId}')", ("Device.Read.All",), "read a device by deviceId"
    ),
    Endpoint("update_device", "PATCH", "/devices/{id}", ("Device.ReadWrite.All",), "disable or tag a device"),
    Endpoint("delete_device", "DELETE", "/devices/{id}", ("Device.ReadWrite.All",), "delete a device"),
    Endpoint(
        "registered_owners", "GET", "/devices/{id}/registeredOwners", ("Device.Read.All", "User.Read.All"),
        "read a device's owners with their UPN and mail",
    ),
    Endpoint(
        "group_devices", "GET", "/groups/{id}/transitiveMembers/microsoft.graph.device", ("GroupMember.Read.All",),
        "list the devices of protected groups",
    ),
    Endpoint("get_user", "GET", "/users/{id}", ("User.Read.All",), "read a user (owner, ticket requester)"),
    Endpoint(
        "user_registered_devices", "GET", "/users/{id}/registeredDevices",
        ("User.Read.All", "Device.Read.All"), "count a user's devices against the device quota",
    ),
    Endpoint(
        "check_member_groups", "POST", "/users/{id}/checkMemberGroups", ("GroupMember.Read.All", "User.Read.All"),
        "check a user's (transitive) group membership",
    ),
    Endpoint(
        "device_registration_policy", "GET", "/policies/deviceRegistrationPolicy", ("Policy.Read.DeviceConfiguration",),
        "read the join scope and device quota",
    ),
    Endpoint(
        "bitlocker_keys", "GET", "/informationProtection/bitlocker/recoveryKeys", ("BitlockerKey.ReadBasic.All",),
        "check for BitLocker recovery keys before a delete",
    ),
    Endpoint(
        "managed_devices", "GET", "/deviceManagement/managedDevices", ("DeviceManagementManagedDevices.Read.All",),
        "read a device's Intune record (last sync)",
    ),
    # Metadata only (no password): ReadBasic is the least privilege; Read.All would also return the passwords.
    Endpoint(
        "laps_credentials", "GET", "/directory/deviceLocalCredentials/{deviceId}", ("DeviceLocalCredential.ReadBasic.All",),
        "check for a Windows LAPS password before a delete",
    ),
    Endpoint(
        "conditional_access_policies", "GET", "/identity/conditionalAccess/policies", ("Policy.Read.All",),
        "check that no Conditional Access device filter reads the tag attribute (janitor doctor)",
    ),
    Endpoint(
        "dynamic_groups", "GET", "/groups", ("Group.Read.All",),
        "check that no dynamic group rule reads the tag attribute (janitor doctor)",
    ),
    Endpoint("send_mail", "POST", "/users/{id}/sendMail", ("Mail.Send",), "mail notices to device owners"),
)

#: Endpoint rows by key (e.g. REQUIRED_PERMISSIONS["update_device"].permissions == ("Device.ReadWrite.All",)).
REQUIRED_PERMISSIONS: Mapping[str, Endpoint] = {row.key: row for row in _ROWS}

#: Every application permission the project can use, sorted (what an admin grants to the identity).
ALL_PERMISSIONS: tuple[str, ...] = tuple(sorted({p for row in _ROWS for p in row.permissions}))


def endpoint_for(method: str, path: str) -> Endpoint | None:
    """The row for a request; `path` is relative to the API version (no query string), e.g. /devices/abc."""
    for row in _ROWS:
        if row.matches(method, path):
            return row
    return None


def missing_permission_hint(method: str, path: str) -> str:
    """The sentence a 403 message carries: which permission to grant for this request."""
    row = endpoint_for(method, path)
    if row is None:
        return (
            f"the app identity lacks a Microsoft Graph application permission for {method.upper()} {path}; "
            "check the permissions granted to it"
        )
    names = " and ".join(row.permissions)
    plural = "s" if len(row.permissions) > 1 else ""
    return (
        f"the app identity needs the Microsoft Graph application permission{plural} {names} (to {row.need}); "
        "grant it to the managed identity with admin consent, then retry"
    )
