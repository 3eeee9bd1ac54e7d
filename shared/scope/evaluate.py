"""The pure join-scope decision over a deviceRegistrationPolicy document (Graph v1.0 JSON shape)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from shared.errors import PermanentError
from shared.jsonshape import is_object

ALL = "#microsoft.graph.allDeviceRegistrationMembership"
SELECTED = "#microsoft.graph.enumeratedDeviceRegistrationMembership"
NONE = "#microsoft.graph.noDeviceRegistrationMembership"
DEFAULT_QUOTA = 50  # Graph's default userDeviceQuota


class ScopePolicyError(PermanentError):
    """The deviceRegistrationPolicy document does not have the shape Graph documents."""


class ScopeResult(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a user may Entra-join one more device, and why (readable `reasons`, in order)."""

    user_id: str
    allowed: bool  # in scope AND below the quota
    scope: str  # all | selected | none
    in_scope: bool
    matched_by: str | None  # "all", "user", "group:<id>" or None
    quota: int
    registered_devices: int  # the user's devices that count against the quota (hybrid excluded)
    quota_reached: bool
    reasons: list[str]

    def to_builtins(self) -> dict[str, Any]:
        """JSON-ready form for audit records and API answers."""
        return msgspec.to_builtins(self)


def _membership(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    join = policy.get("azureADJoin")
    if not is_object(join):
        raise ScopePolicyError("deviceRegistrationPolicy has no azureADJoin object; is this the v1.0 policy document?")
    allowed = join.get("allowedToJoin")
    if not is_object(allowed) or not isinstance(allowed.get("@odata.type"), str):
        raise ScopePolicyError("deviceRegistrationPolicy.azureADJoin.allowedToJoin has no @odata.type")
    return allowed


def _listed(allowed: Mapping[str, Any], key: str) -> list[str]:
    """The `users` or `groups` ids a selected scope names (absent or null: none)."""
    return [str(v) for v in allowed.get(key) or ()]


def join_scope_groups(policy_json: Mapping[str, Any]) -> list[str]:
    """Group ids a `selected` join scope names (empty for all/none): what checkMemberGroups must ask about."""
    allowed = _membership(policy_json)
    if allowed["@odata.type"] != SELECTED:
        return []
    return _listed(allowed, "groups")


def _quota(policy_json: Mapping[str, Any]) -> int:
    quota = policy_json.get("userDeviceQuota", DEFAULT_QUOTA)
    if quota is None:
        return DEFAULT_QUOTA
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
        raise ScopePolicyError(f"deviceRegistrationPolicy.userDeviceQuota must be a whole number >= 0, not {quota!r}")
    return quota


def evaluate_join_scope(
    policy_json: Mapping[str, Any],
    user_id: str,
    member_group_ids: Iterable[str],
    registered_device_count: int,
) -> ScopeResult:
    """Decide join eligibility. `member_group_ids`: the policy's groups the user is a (transitive) member of."""
    allowed = _membership(policy_json)
    kind = allowed["@odata.type"]
    reasons: list[str] = []
    matched: str | None = None
    if kind == ALL:
        scope, matched = "all", "all"
        reasons.append("Entra join is allowed for all users")
    elif kind == NONE:
        scope = "none"
        reasons.append("Entra join is allowed for no user (Devices > Device settings: 'Users may join devices' is None)")
    elif kind == SELECTED:
        scope = "selected"
        users = {u.lower() for u in _listed(allowed, "users")}
        groups = _listed(allowed, "groups")
        member = {str(g).lower() for g in member_group_ids}
        hit = next((g for g in groups if g.lower() in member), None)
        if user_id.lower() in users:
            matched = "user"
            reasons.append("Entra join is allowed for selected users, and this user is listed by name")
        elif hit is not None:
            matched = f"group:{hit}"
            reasons.append(f"Entra join is allowed for selected users, and this user is a member of group {hit}")
        else:
            reasons.append(
                f"Entra join is allowed only for selected users ({len(users)} users, {len(groups)} groups) "
                "and this user is neither listed nor a member of a listed group"
            )
    else:
        raise ScopePolicyError(f"unknown azureADJoin.allowedToJoin @odata.type {kind!r}")
    if registered_device_count < 0:
        raise ValueError(f"registered_device_count must be >= 0, not {registered_device_count}")
    quota = _quota(policy_json)
    quota_reached = registered_device_count >= quota
    if quota_reached:
        reasons.append(
            f"the user holds {registered_device_count} devices against a quota of {quota}: a new join is refused "
            "until stale devices are removed or the quota is raised"
        )
    else:
        reasons.append(f"the user holds {registered_device_count} of {quota} devices allowed")
    in_scope = matched is not None
    return ScopeResult(
        user_id=user_id,
        allowed=in_scope and not quota_reached,
        scope=scope,
        in_scope=in_scope,
        matched_by=matched,
        quota=quota,
        registered_devices=registered_device_count,
        quota_reached=quota_reached,
        reasons=reasons,
    )
