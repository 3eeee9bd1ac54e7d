"""Read the tenant's join setting, the user's group membership and devices, then decide (pure)."""

from __future__ import annotations

from shared.errors import PermanentError
from shared.ports import GraphPort
from shared.scope.evaluate import ScopeResult, evaluate_join_scope, join_scope_groups

CHECK_MEMBER_GROUPS_MAX = 20  # Graph accepts at most 20 group ids per checkMemberGroups call


async def check_join_scope(graph: GraphPort, user: str) -> ScopeResult:
    """Join eligibility of `user` (object id or UPN). Hybrid devices do not count against the quota."""
    found = await graph.get_user(user)
    if found is None:
        raise PermanentError(f"user {user!r} not found in the tenant; give an object id or a UPN")
    policy = await graph.device_registration_policy()
    groups = join_scope_groups(policy)
    member: set[str] = set()
    for start in range(0, len(groups), CHECK_MEMBER_GROUPS_MAX):
        member |= await graph.check_member_groups(found.id, groups[start : start + CHECK_MEMBER_GROUPS_MAX])
    devices = await graph.user_registered_devices(found.id)
    counted = sum(1 for d in devices if d.trust_type != "ServerAd")
    return evaluate_join_scope(policy, found.id, member, counted)
