"""Throttling (resource units per 10 s, write budget per window) and fault injection."""

from __future__ import annotations

import time
from typing import Any

from simulator import Faults, Limits, Tenant
from simulator.limits import Throttle
from tests.simulator.helpers import assert_graph_error, client


def test_token_bucket_refills_over_ten_seconds() -> None:
    throttle = Throttle(Limits(resource_units_per_10s=10, write_budget=None), user_count=10)
    assert all(throttle.check("app", 1, 0, now=0.0).allowed for _ in range(10))
    refused = throttle.check("app", 1, 0, now=0.0)
    assert not refused.allowed and refused.retry_after == 1 and refused.budget == "resource units"
    assert throttle.check("other-app", 1, 0, now=0.0).allowed  # budgets are per app
    assert not throttle.check("app", 4, 0, now=2.0).allowed  # 2 s refilled 2 units, checkMemberGroups costs 4
    assert throttle.check("app", 4, 0, now=4.0).allowed


def test_write_budget_is_a_sliding_window() -> None:
    throttle = Throttle(Limits(resource_units_per_10s=None, write_budget=3, write_window_s=150), user_count=10)
    for t in (0.0, 10.0, 20.0):
        assert throttle.check("app", 1, 1, now=t).allowed
    refused = throttle.check("app", 1, 1, now=30.0)
    assert not refused.allowed and refused.retry_after == 120 and refused.budget == "write budget"
    assert throttle.check("app", 1, 0, now=30.0).allowed  # reads are not writes
    assert throttle.check("app", 1, 1, now=150.0).allowed  # the first write left the window


def test_auto_limits_follow_tenant_size() -> None:
    assert Limits().units_for(30) == 3500 and Limits().units_for(300) == 5000 and Limits().units_for(3000) == 8000
    assert Limits.off().units_for(3000) is None and Limits.off().write_budget is None


async def test_429_with_retry_after_then_recovers(small_tenant: Tenant, start_simulator: Any) -> None:
    sim = await start_simulator(small_tenant, limits=Limits(resource_units_per_10s=3))
    clock = [1000.0]
    sim.pipeline.clock = lambda: clock[0]
    async with client(sim) as http:
        statuses = [(await http.get("/devices", params={"$top": "1"})).status_code for _ in range(3)]
        throttled = await http.get("/devices", params={"$top": "1"})
        clock[0] += float(throttled.headers["Retry-After"])
        again = await http.get("/devices", params={"$top": "1"})
    assert statuses == [200, 200, 200]
    assert "resource units" in assert_graph_error(throttled, 429, "TooManyRequests")["message"]
    assert throttled.headers["Retry-After"] == "4"  # 1 unit at 0.3 units/s
    assert again.status_code == 200 and sim.stats.throttled == 1
    assert again.headers["x-ms-resource-unit"] == "1" and "x-ms-throttle-limit-percentage" in again.headers


async def test_write_budget_over_http(small_tenant: Tenant, start_simulator: Any) -> None:
    sim = await start_simulator(small_tenant, limits=Limits(resource_units_per_10s=None, write_budget=2, write_window_s=40))
    oid = small_tenant.object_ids()[0]
    body = {"extensionAttributes": {"extensionAttribute1": "x"}}
    async with client(sim) as http:
        ok = [(await http.patch(f"/devices/{oid}", json=body)).status_code for _ in range(2)]
        refused = await http.patch(f"/devices/{oid}", json=body)
        read = await http.get(f"/devices/{oid}")
    assert ok == [204, 204] and read.status_code == 200
    assert_graph_error(refused, 429)
    assert 39 <= int(refused.headers["Retry-After"]) <= 40


async def test_throttling_can_be_turned_off(small_tenant: Tenant, start_simulator: Any) -> None:
    sim = await start_simulator(small_tenant, limits=Limits.off())
    sim.pipeline.clock = lambda: 0.0
    async with client(sim) as http:
        statuses = {(await http.get("/devices", params={"$top": "1"})).status_code for _ in range(50)}
    assert statuses == {200}


async def test_fault_knobs_change_at_run_time(small_tenant: Tenant, start_simulator: Any) -> None:
    sim = await start_simulator(small_tenant)
    async with client(sim) as http:
        sim.faults.fail_next_5xx = 2
        first = [(await http.get("/devices", params={"$top": "1"})).status_code for _ in range(3)]
        sim.faults.error_rate_5xx, sim.faults.error_status, sim.faults.error_retry_after = 1.0, 504, 2
        gateway = await http.get("/devices", params={"$top": "1"})
        sim.faults.reset()
        sim.faults.storm_429, sim.faults.storm_retry_after, sim.faults.match = 1.0, 5, "^PATCH "
        read = await http.get("/devices", params={"$top": "1"})
        write = await http.patch(
            f"/devices/{small_tenant.object_ids()[0]}", json={"extensionAttributes": {"extensionAttribute1": "x"}}
        )
        sim.faults.reset()
        sim.faults.latency_ms = 150
        started = time.perf_counter()
        slow = await http.get("/devices", params={"$top": "1"})
        elapsed = time.perf_counter() - started
    assert first == [503, 503, 200]
    assert_graph_error(gateway, 504)
    assert gateway.headers["Retry-After"] == "2"
    assert read.status_code == 200
    assert "injected" in assert_graph_error(write, 429)["message"] and write.headers["Retry-After"] == "5"
    assert slow.status_code == 200 and elapsed >= 0.15
    assert sim.stats.faults_5xx == 3 and sim.stats.throttled == 1
    assert small_tenant.write_attempts == []


async def test_storm_rate_is_seeded(small_tenant: Tenant, start_simulator: Any) -> None:
    counts = []
    for _ in range(2):
        sim = await start_simulator(small_tenant, faults=Faults(storm_429=0.5, seed=3))
        async with client(sim) as http:
            counts.append([(await http.get("/devices", params={"$top": "1"})).status_code for _ in range(40)])
    assert counts[0] == counts[1]
    assert 10 <= counts[0].count(429) <= 30
