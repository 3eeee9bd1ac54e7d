"""Join-scope check: all / selected (user, group) / none, and the device quota."""

from __future__ import annotations

import pytest

from shared.models import Device
from shared.ports import Owner
from shared.scope import ScopePolicyError, check_join_scope, evaluate_join_scope
from shared.scope.evaluate import ALL, NONE, SELECTED
from tests.worker.fakes import FakeGraph

GROUP = "0b0a5c1e-0000-4000-8000-000000000001"


def _policy(kind: str, *, users=(), groups=(), quota=50) -> dict:
    allowed = {"@odata.type": kind}
    if kind == SELECTED:
        allowed |= {"users": list(users), "groups": list(groups)}
    return {"userDeviceQuota": quota, "azureADJoin": {"allowedToJoin": allowed}}


def test_all_allows_below_quota():
    result = evaluate_join_scope(_policy(ALL), "u1", [], 3)
    assert result.allowed and result.scope == "all" and result.matched_by == "all"


def test_none_refuses_everyone():
    result = evaluate_join_scope(_policy(NONE), "u1", [GROUP], 0)
    assert not result.allowed and not result.in_scope and result.scope == "none"


def test_selected_by_user_by_group_and_neither():
    policy = _policy(SELECTED, users=["U1"], groups=[GROUP])
    assert evaluate_join_scope(policy, "u1", [], 0).matched_by == "user"
    by_group = evaluate_join_scope(policy, "u2", [GROUP], 0)
    assert by_group.allowed and by_group.matched_by == f"group:{GROUP}"
    neither = evaluate_join_scope(policy, "u3", [], 0)
    assert not neither.allowed and "neither listed nor a member" in neither.reasons[0]


def test_quota_reached_refuses_even_in_scope():
    result = evaluate_join_scope(_policy(ALL, quota=5), "u1", [], 5)
    assert result.in_scope and result.quota_reached and not result.allowed
    assert "5 devices against a quota of 5" in result.reasons[-1]
    assert evaluate_join_scope(_policy(ALL, quota=5), "u1", [], 4).allowed


def test_bad_policy_documents_say_what_is_wrong():
    with pytest.raises(ScopePolicyError, match="azureADJoin"):
        evaluate_join_scope({}, "u1", [], 0)
    with pytest.raises(ScopePolicyError, match="unknown"):
        evaluate_join_scope({"azureADJoin": {"allowedToJoin": {"@odata.type": "#x"}}}, "u1", [], 0)
    with pytest.raises(ScopePolicyError, match="userDeviceQuota"):
        evaluate_join_scope({**_policy(ALL), "userDeviceQuota": "many"}, "u1", [], 0)


async def test_check_join_scope_reads_groups_and_skips_hybrid_devices():
    graph = FakeGraph()
    graph.users["u1"] = Owner("u1", "Ann", "ann@contoso.test", "ann@contoso.test")
    groups = [f"0b0a5c1e-0000-4000-8000-{n:012d}" for n in range(25)]  # more than one checkMemberGroups call
    graph.policy = _policy(SELECTED, groups=groups, quota=2)
    graph.member_of["u1"] = {groups[22]}
    graph.user_devices["u1"] = [
        Device(id="d1", trust_type="AzureAd"),
        Device(id="d2", trust_type="ServerAd"),  # hybrid: not counted
    ]
    result = await check_join_scope(graph, "ann@contoso.test")
    assert result.matched_by == f"group:{groups[22]}" and result.registered_devices == 1 and result.allowed
    graph.user_devices["u1"].append(Device(id="d3", trust_type="Workplace"))
    assert not (await check_join_scope(graph, "u1")).allowed
