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
    """One Graph call: method, path template (relative to the API version) and the application permissions it needs.

    `version` is "v1.0" or "beta"; `roles` are the Entra directory roles Microsoft names for the operation (a
    role held by the identity works in place of the permission); `confirmed` is False when Microsoft's docs do
    not name the application permission (the row then holds the best reading, and says so in its messages).
    """

    key: str
    method: str
    path: str
    permissions: tuple[str, ...]
    need: str  # what the project uses it for, in words a person granting consent understands
    version: str = "v1.0"
    roles: tuple[str, ...] = ()
    confirmed: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"(\{[^}]+\})", self.path)
        regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        object.__setattr__(self, "pattern", re.compile(f"{regex}/?", re.IGNORECASE))

    def matches(self, method: str, path: str, version: str = "v1.0") -> bool:
        return method.upper() == self.method and version == self.version and self.pattern.fullmatch(path) is not None


#: Device soft delete (preview; Microsoft Learn, device management docs dated 2026-04): Entra joined and registered
#: devices stay in deleted items for 30 days and are restored through Graph beta `directory/deletedItems`; hybrid
#: joined objects are deleted for good at once. The roles Microsoft names for restoring a device, with their
#: template ids (Microsoft Learn, "Microsoft Entra built-in roles").
RESTORE_DEVICE_ROLES: Mapping[str, str] = {
    "Cloud Device Administrator": "7698a772-787b-4ac8-901f-60d6b08affd2",
    "Intune Administrator": "3a2c62db-5318-420d-8d74-23affee5d9d5",
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
}
#: UNCONFIRMED: Microsoft's docs name no application permission for restoring a device (the deleted items pages
#: list users, groups, applications, ... and say nothing of devices). Device.ReadWrite.All is the reading by
#: analogy (restoring a user takes User.ReadWrite.All, a group Group.ReadWrite.All). This is the one place the
#: name lives: the gateway's 403 message, the doctor, the grant script and the simulator read it from here.
RESTORE_DEVICE_PERMISSION = "Device.ReadWrite.All"
#: Reading deleted devices, by the same analogy (UNCONFIRMED as well).
READ_DELETED_DEVICES_PERMISSION = "Device.Read.All"


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
        "device_groups", "GET", "/devices/{id}/memberOf/microsoft.graph.group", ("Device.Read.All",),
        "record a device's group memberships before a delete (what a restore is checked against)",
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
    Endpoint(
        "list_deleted_devices", "GET", "/directory/deletedItems/microsoft.graph.device", (READ_DELETED_DEVICES_PERMISSION,),
        "list deleted devices that can still be restored (undo)", version="beta", confirmed=False,
    ),
    Endpoint(
        "get_deleted_device", "GET", "/directory/deletedItems/{id}", (READ_DELETED_DEVICES_PERMISSION,),
        "read a deleted device before restoring it (undo)", version="beta", confirmed=False,
    ),
    Endpoint(
        "restore_deleted_device", "POST", "/directory/deletedItems/{id}/restore", (RESTORE_DEVICE_PERMISSION,),
        "restore a device deleted within the last 30 days (undo)", version="beta",
        roles=tuple(RESTORE_DEVICE_ROLES), confirmed=False,
    ),
)

#: Endpoint rows by key (e.g. REQUIRED_PERMISSIONS["update_device"].permissions == ("Device.ReadWrite.All",)).
REQUIRED_PERMISSIONS: Mapping[str, Endpoint] = {row.key: row for row in _ROWS}

#: Every application permission the project can use, sorted (what an admin grants to the identity).
ALL_PERMISSIONS: tuple[str, ...] = tuple(sorted({p for row in _ROWS for p in row.permissions}))


def endpoint_for(method: str, path: str) -> Endpoint | None:
    """The row for a request; `path` is relative to the v1.0 root (no query string), e.g. /devices/abc, and a
    beta request's path starts with /beta (as the gateway sees it: /beta/directory/deletedItems/{id})."""
    version = "v1.0"
    if path == "/beta" or path.startswith("/beta/"):
        version, path = "beta", path[len("/beta") :] or "/"
    for row in _ROWS:
        if row.matches(method, path, version):
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
    hint = (
        f"the app identity needs the Microsoft Graph application permission{plural} {names} (to {row.need}); "
        "grant it to the managed identity with admin consent"
    )
    if row.roles:
        hint += f", or assign it one of the Entra roles {', '.join(row.roles)}"
    if not row.confirmed:
        hint += (
            f" (Microsoft's docs do not name the application permission for {row.method} {row.path} yet: "
            f"{names} is the best reading)"
        )
    return hint + ", then retry"
