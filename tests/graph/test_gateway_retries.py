"""Retries (tenacity is the only owner), throttling, typed errors with request ids, permission messages."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from shared.errors import GraphError, GraphPermissionError, GraphThrottled
from shared.graph import GraphGateway
from shared.graph.retry import RetryPolicy
from simulator import Limits, RunningSimulator
from tests.graph.conftest import RoleToken, drain, virtual_retry


async def test_a_429_storm_is_ridden_out_honouring_retry_after(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    retry, clock = virtual_retry(max_attempts=5, max_seconds=30, backoff_initial=0.01)
    gateway = make_gateway(simulator, retry=retry)
    simulator.faults.storm_retry_after = 1
    simulator.faults.throttle_next = 2  # the first two requests get 429 + Retry-After: 1
    devices = await drain(gateway.iter_devices(page_size=999))
    assert len(devices) == simulator.tenant.device_count
    assert simulator.stats.throttled == 2
    # Waited the full Retry-After twice, plus under 10 % jitter (backoff alone would be ~0.01 s).
    assert len(clock.slept) == 2 and all(1.0 <= s <= 1.1 for s in clock.slept)


async def test_retries_give_up_after_the_attempt_bound_with_a_clear_error(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    retry, clock = virtual_retry(max_attempts=3, max_seconds=60, backoff_initial=0.01)
    gateway = make_gateway(simulator, retry=retry)
    simulator.faults.storm_429 = 1.0
    simulator.faults.storm_retry_after = 1
    with pytest.raises(GraphThrottled) as caught:
        await drain(gateway.iter_devices())
    error = caught.value
    assert error.status == 429 and error.code == "TooManyRequests" and error.request_id
    assert error.transient
    assert "GET /devices still failing after 3 attempts" in str(error)
    assert "GRAPH_MAX_ATTEMPTS" in str(error)
    # Exactly three requests reached the server: the SDK's own retry handler does not multiply them.
    assert simulator.stats.requests == 3
    assert len(clock.slept) == 2  # a wait between attempts, none after the last


async def test_retries_give_up_when_the_next_wait_would_pass_the_time_bound(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    retry, clock = virtual_retry(max_attempts=50, max_seconds=1.5, backoff_initial=0.01)
    gateway = make_gateway(simulator, retry=retry)
    simulator.faults.storm_429 = 1.0
    simulator.faults.storm_retry_after = 1
    with pytest.raises(GraphThrottled, match="after 2 attempts"):
        await gateway.get_device(simulator.tenant.object_ids()[0])
    # One Retry-After wait; a second one would have ended past the 1.5 s bound, so it gave up instead.
    assert len(clock.slept) == 1 and 1.0 <= clock.slept[0] <= 1.1
    assert clock.now < 1.5
    assert simulator.stats.requests == 2


async def test_503_is_retried_with_backoff_but_500_is_not(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    gateway = make_gateway(simulator)
    oid = simulator.tenant.object_ids()[0]
    simulator.faults.fail_next_5xx = 2  # 503 without Retry-After: exponential backoff with jitter
    assert (await gateway.get_device(oid)) is not None
    assert simulator.stats.faults_5xx == 2 and simulator.stats.requests == 3

    simulator.reset_stats()
    simulator.faults.error_status = 500
    simulator.faults.fail_next_5xx = 1
    with pytest.raises(GraphError) as caught:
        await gateway.get_device(oid)
    assert caught.value.status == 500 and caught.value.transient and not isinstance(caught.value, GraphThrottled)
    assert simulator.stats.requests == 1


async def test_resource_unit_throttling_is_absorbed(
    small_tenant, start_simulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    sim = await start_simulator(small_tenant, limits=Limits(resource_units_per_10s=10, write_budget=None))
    gateway = make_gateway(sim, retry=RetryPolicy(max_attempts=4, max_seconds=30))
    oids = small_tenant.object_ids()[:12]  # 12 GETs against a bucket of 10 units per 10 s (1 unit/s back)
    devices = [await gateway.get_device(oid) for oid in oids]
    assert [d.id for d in devices if d] == oids
    assert sim.stats.throttled >= 1


async def test_403_names_the_missing_permission(simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]) -> None:
    credential = RoleToken(["Device.Read.All"])
    gateway = make_gateway(simulator, credential)
    assert await gateway.get_device(simulator.tenant.object_ids()[0]) is not None  # the token is sent and honoured
    assert credential.scopes[0] == ("https://graph.microsoft.com/.default",)

    with pytest.raises(GraphPermissionError) as caught:
        await gateway.device_registration_policy()
    error = caught.value
    assert error.status == 403 and error.request_id
    assert "Policy.Read.DeviceConfiguration" in str(error)
    assert "GET /policies/deviceRegistrationPolicy" in str(error)

    [result] = await gateway.update_devices([(simulator.tenant.object_ids()[0], {"accountEnabled": False})])
    assert result.status == 403 and result.error_code == "Authorization_RequestDenied" and result.request_id
    assert "Device.ReadWrite.All" in (result.error_message or "")
    assert simulator.tenant.writes == []


async def test_unreachable_graph_is_a_transient_error_naming_the_setting(make_gateway: Callable[..., GraphGateway]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket closes

    class Nowhere:
        base_url = f"http://127.0.0.1:{port}/v1.0"

    gateway = make_gateway(Nowhere, retry=RetryPolicy(max_attempts=2, max_seconds=5, backoff_initial=0.01))
    with pytest.raises(GraphError) as caught:
        await gateway.get_device("00000000-0000-0000-0000-000000000001")
    assert caught.value.transient
    assert "could not reach Microsoft Graph" in str(caught.value) and "GRAPH_BASE_URL" in str(caught.value)
    assert "after 2 attempts" in str(caught.value)

