"""Who is calling, and may they: bearer tokens are decoded (never verified) and their `roles` enforced.

Anonymous requests may do everything, so local runs need no token. A token with a `scp` claim is a
delegated (user) caller; anything else is app-only, which is what entra-janitor is.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.graph.permissions import READ_DELETED_DEVICES_PERMISSION, RESTORE_DEVICE_PERMISSION, RESTORE_DEVICE_ROLES

#: Application permissions per operation: each inner tuple is "any of these"; all groups are needed.
PERMISSIONS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "devices.read": (("Device.Read.All", "Device.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),),
    "devices.write": (("Device.ReadWrite.All",),),
    "users.read": (
        ("User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    ),
    "groups.members": (
        ("GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    ),
    "users.checkMemberGroups": (
        ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"),
        ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    ),
    "policy.deviceRegistration": (("Policy.Read.DeviceConfiguration", "Policy.ReadWrite.DeviceConfiguration"),),
    "bitlocker.keys": (("BitlockerKey.ReadBasic.All", "BitlockerKey.Read.All"),),
    "intune.managedDevices": (("DeviceManagementManagedDevices.Read.All", "DeviceManagementManagedDevices.ReadWrite.All"),),
    "mail.send": (("Mail.Send",),),
    "laps.read": (("DeviceLocalCredential.ReadBasic.All", "DeviceLocalCredential.Read.All"),),
    "policy.conditionalAccess": (("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"),),
    "groups.read": (("Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),),
    "organization.read": (("Organization.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"),),
    # Device soft delete (Graph beta directory/deletedItems): the permission names are the project's reading, kept in
    # shared/graph/permissions.py (Microsoft's docs do not confirm them).
    "devices.readDeleted": ((READ_DELETED_DEVICES_PERMISSION, "Device.ReadWrite.All", "Directory.Read.All",
                             "Directory.ReadWrite.All"),),
    "devices.restore": ((RESTORE_DEVICE_PERMISSION,),),
    "none": (),  # $batch itself: each inner request is checked on its own
}
#: Operations a directory role (the token's `wids` claim: role template ids) allows in place of the permission;
#: a delegated (user) caller needs one of these roles, as Microsoft names roles for them.
ROLE_ALTERNATIVES: Mapping[str, Mapping[str, str]] = {"devices.restore": RESTORE_DEVICE_ROLES}
#: Reading a user's UPN and mail (registeredOwners answers with ids only without it).
USER_DETAILS = PERMISSIONS["users.read"][0]


class BadToken(ValueError):
    """The Authorization header is not a bearer JWT whose payload decodes."""


@dataclass(frozen=True, slots=True)
class Caller:
    app: str  # appid/azp claim, "anonymous" without a token
    roles: frozenset[str] | None  # None: anonymous, everything allowed
    delegated: bool = False
    directory_roles: frozenset[str] = frozenset()  # `wids`: Entra role template ids held by the caller

    @property
    def app_only(self) -> bool:
        return not self.delegated

    def missing(self, permission: str) -> str | None:
        """The permission(s) to grant for an operation, or None when the caller holds them (or a role that allows it)."""
        if self.roles is None:
            return None
        by_role = ROLE_ALTERNATIVES.get(permission)
        if by_role is not None and self.directory_roles.intersection(by_role.values()):
            return None
        if self.delegated:
            return None if by_role is None else f"{' or '.join(by_role)} role"
        for alternatives in PERMISSIONS[permission]:
            if not self.roles.intersection(alternatives):
                return alternatives[0]
        return None

    def refusal(self, permission: str) -> str | None:
        """Graph's 403 message when the caller may not do the operation, or None when it may."""
        missing = self.missing(permission)
        if missing is None:
            return None
        needed = missing if missing.endswith(" role") else f"the {missing} permission"
        by_role = ROLE_ALTERNATIVES.get(permission)
        if by_role is not None and not self.delegated:
            needed += f" or one of the roles {', '.join(by_role)}"
        return f"Insufficient privileges to complete the operation. The caller needs {needed}."

    def holds_any(self, permissions: Iterable[str]) -> bool:
        return self.roles is None or self.delegated or bool(self.roles.intersection(permissions))


ANONYMOUS = Caller(app="anonymous", roles=None)


def caller_from(authorization: str | None) -> Caller:
    """Decode `Authorization: Bearer <jwt>` without checking the signature."""
    if not authorization:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        raise BadToken("Authorization must be 'Bearer <JWT>'")
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken(f"the access token payload is not base64url JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise BadToken("the access token payload is not a JSON object")
    roles = claims.get("roles") or []
    if not isinstance(roles, list):
        raise BadToken("the access token's roles claim is not a list")
    wids = claims.get("wids") or []
    if not isinstance(wids, list):
        raise BadToken("the access token's wids claim is not a list")
    app = str(claims.get("appid") or claims.get("azp") or claims.get("oid") or "unknown-app")
    return Caller(
        app=app,
        roles=frozenset(str(r) for r in roles),
        delegated="scp" in claims,
        directory_roles=frozenset(str(w).lower() for w in wids),
    )


def make_token(
    roles: Iterable[str],
    *,
    app_id: str = "00000000-0000-0000-0000-00000000a11e",
    delegated: bool = False,
    directory_roles: Iterable[str] = (),
) -> str:
    """An unsigned JWT carrying these app roles and these Entra directory roles (by name or template id, as `wids`).

    Tests use it to play an identity with given permissions and role assignments.
    """

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims: dict[str, object] = {"aud": "https://graph.microsoft.com", "appid": app_id, "roles": sorted(roles)}
    wids = sorted(RESTORE_DEVICE_ROLES.get(name, name) for name in directory_roles)
    if wids:
        claims["wids"] = wids
    if delegated:
        claims["scp"] = "Device.ReadWrite.All"
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"
