"""The gateway's safety reads (LAPS, Conditional Access filters, dynamic groups) and Graph's non-Windows refusal."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.errors import GraphBadRequest, GraphPermissionError
from shared.graph import GraphGateway
from shared.graph.failures import failure_message, graph_error, is_non_windows_refusal
from shared.graph.gateway import LAPS_SELECT
from shared.graph.wire import ErrorDetail
from simulator import RunningSimulator
from tests.graph.conftest import RoleToken

NON_WINDOWS = ErrorDetail(
    code="Request_BadRequest",
    message="Properties other than ExtendedAttribute1..15 can be modified only on windows devices.",
)


async def test_laps_credential_present_is_true_on_200_and_false_on_404(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = simulator.tenant
    with_laps, without = tenant.object_ids()[:2]
    tenant.set_laps(with_laps)
    gateway = make_gateway(simulator, RoleToken(["DeviceLocalCredential.ReadBasic.All"]))
    # ReadBasic is enough only because the gateway never selects `credentials` (the simulator refuses that with 403).
    assert await gateway.laps_credential_present(tenant.devices.device_id(tenant.device_index(with_laps))) is True
    assert await gateway.laps_credential_present(tenant.devices.device_id(tenant.device_index(without))) is False
    assert simulator.stats.by_path["GET /directory/deviceLocalCredentials/{key}"] == 2
    assert "credentials" not in LAPS_SELECT


async def test_laps_read_without_the_permission_raises_naming_it(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = simulator.tenant
    oid = tenant.object_ids()[0]
    tenant.set_laps(oid)
    gateway = make_gateway(simulator, RoleToken(["Device.Read.All"]))
    with pytest.raises(GraphPermissionError) as caught:  # never "no credential": the caller cannot know
        await gateway.laps_credential_present(tenant.devices.device_id(tenant.device_index(oid)))
    assert "DeviceLocalCredential.ReadBasic.All" in str(caught.value)


async def test_a_device_id_that_is_not_a_guid_is_refused_before_any_request(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    with pytest.raises(ValueError, match="GUID"):
        await make_gateway(simulator).laps_credential_present("../deviceLocalCredentials")
    assert simulator.stats.requests == 0


async def test_conditional_access_filters_and_dynamic_group_rules_are_read(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    simulator.tenant.seed_tag_rules(attribute=15)
    gateway = make_gateway(simulator, RoleToken(["Policy.Read.All", "Group.Read.All"]))
    policies = await gateway.conditional_access_policies()
    groups = await gateway.dynamic_groups()
    rules = {p.display_name: p.device_filter.rule for p in policies if p.device_filter}
    assert rules["Kiosks: require compliant device"] == 'device.extensionAttribute15 -eq "kiosk"'
    assert {p.state for p in policies} == {"enabled"}
    assert {g.display_name: g.membership_rule for g in groups} == {
        "Kiosk devices": '(device.extensionAttribute15 -eq "kiosk")',
        "Windows devices": '(device.deviceOSType -eq "Windows")',
    }  # assigned groups (protected, lab, ...) are filtered out by Graph
    assert all(g.group_types == ["DynamicMembership"] for g in groups)


async def test_conditional_access_without_policy_read_names_it(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    gateway = make_gateway(simulator, RoleToken(["Device.Read.All", "GroupMember.Read.All"]))
    with pytest.raises(GraphPermissionError, match=r"Policy\.Read\.All"):
        await gateway.conditional_access_policies()
    with pytest.raises(GraphPermissionError, match=r"Group\.Read\.All"):
        await gateway.dynamic_groups()


async def test_disabling_a_non_windows_device_is_a_permanent_failure_without_grant_advice(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = simulator.tenant
    mobile = tenant.truth.ids_with("non_windows", without=("disabled",))[0]
    gateway = make_gateway(simulator, RoleToken(["Device.Read.All", "Device.ReadWrite.All"]))
    tag = {"extensionAttributes": {"extensionAttribute15": "entra-janitor|tagged|2025-06-01T02:00:00Z|stale|r1"}}
    [refused, tagged] = await gateway.update_devices([(mobile, {"accountEnabled": False}), (mobile, tag)])
    assert refused.status == 400 and refused.error_code == "Request_BadRequest" and refused.request_id
    message = refused.error_message or ""
    assert "not Windows" in message and "extensionAttribute1..15" in message and "tagged or deleted" in message
    assert "grant" not in message.lower() and "admin consent" not in message.lower()
    assert tagged.status == 204
    assert tenant.device_json(mobile)["accountEnabled"] is True  # type: ignore[index]
    [deleted] = await gateway.delete_devices([mobile])
    assert deleted.status == 204 and tenant.device_json(mobile) is None


def test_the_non_windows_refusal_is_recognised_only_from_its_own_answer() -> None:
    assert is_non_windows_refusal(400, NON_WINDOWS.code, NON_WINDOWS.message)
    assert not is_non_windows_refusal(403, NON_WINDOWS.code, NON_WINDOWS.message)
    assert not is_non_windows_refusal(400, "Request_BadRequest", "Unable to update on-premises mastered objects.")
    error = graph_error(400, NON_WINDOWS, "rid-1", "PATCH", "/devices/abc")
    assert type(error) is GraphBadRequest and not error.transient and error.code == "Request_BadRequest"
    assert "PATCH /devices/abc" in error.message and "grant" not in error.message.lower()
    generic = failure_message(400, ErrorDetail(code="Request_BadRequest", message="bad"), "PATCH", "/devices/abc")
    assert "not Windows" not in generic
