"""Adaptive concurrency of bulk reads (halve on 429, step down on Graph's throttle header, climb back when calm),
the gateway feeding it from every page attempt, and /devices/$count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shared.errors import GraphError
from shared.graph import GraphGateway
from shared.graph.concurrency import AdaptiveLimit, throttle_percent
from shared.scan.partitions import REST_FILTER
from simulator import Limits, RunningSimulator
from simulator.irregular import add_irregular_devices
from tests.graph.conftest import drain


def test_a_429_halves_the_limit_once_per_burst_and_calm_answers_climb_back():
    gate = AdaptiveLimit(16)
    gate.in_flight = 5  # five requests out when the first 429 comes back
    gate.observe(429, None)
    assert gate.limit == 8 and gate.throttled == 1
    for _ in range(5):  # the rest of the burst: already out when the limit dropped
        gate.observe(429, None)
    assert gate.limit == 8 and gate.throttled == 6
    gate.in_flight = 0
    gate.observe(429, None)  # a new burst
    assert gate.limit == 4 and gate.lowest == 4
    for _ in range(4):
        gate.observe(200, None)
    assert gate.limit == 5  # one step per round of calm answers
    for _ in range(200):
        gate.observe(200, None)
    assert gate.limit == gate.maximum == 16 and gate.lowest == 4


def test_the_throttle_header_steps_down_and_the_limit_never_goes_below_the_minimum():
    gate = AdaptiveLimit(3, minimum=2)
    gate.observe(200, 0.85)
    assert gate.limit == 2 and gate.warnings == 1
    gate.observe(200, 0.95)
    gate.observe(429, None)
    assert gate.limit == 2 and gate.lowest == 2
    gate.observe(200, 0.5)  # under Graph's 80 % mark: calm
    gate.observe(200, None)
    assert gate.limit == 3
    assert throttle_percent({"X-MS-Throttle-Limit-Percentage": "0.9"}) == 0.9
    assert throttle_percent({"x-ms-throttle-limit-percentage": "n/a"}) is None and throttle_percent({}) is None
    with pytest.raises(ValueError):
        AdaptiveLimit(2, minimum=3)


async def test_no_more_requests_are_out_than_the_limit():
    gate = AdaptiveLimit(4)
    gate.limit = 2
    release = asyncio.Event()
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with gate.slot():
            peak = max(peak, gate.in_flight)
            await release.wait()

    tasks = [asyncio.create_task(request()) for _ in range(6)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert gate.in_flight == 2
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 2 and gate.in_flight == 0


async def test_page_requests_go_through_the_gate_and_it_hears_429s(
    simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    gateway = make_gateway(simulator)
    simulator.faults.storm_retry_after = 0
    simulator.faults.throttle_next = 2
    simulator.faults.match = "^GET /devices$"
    gate = AdaptiveLimit(8)
    devices = await drain(gateway.iter_devices(page_size=50, gate=gate))
    assert len(devices) == simulator.tenant.device_count
    assert gate.throttled == 2 and gate.lowest == 2 and gate.in_flight == 0
    assert simulator.stats.throttled == 2  # retried by tenacity, not by the gate


async def test_the_gate_hears_the_throttle_header(
    small_tenant, start_simulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    sim = await start_simulator(small_tenant, limits=Limits(resource_units_per_10s=10))
    sim.pipeline.clock = lambda: 0.0  # no refill: the budget only drains
    gate = AdaptiveLimit(4)
    devices = await drain(make_gateway(sim).iter_devices(page_size=50, gate=gate))  # 8 pages of 400
    assert len(devices) == 400 and gate.warnings == 1 and gate.limit == 3  # the 8th answer says 80 %


async def test_count_devices_with_and_without_a_filter(
    small_tenant, start_simulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    add_irregular_devices(small_tenant, 2)
    gateway = make_gateway(await start_simulator(small_tenant))
    assert await gateway.count_devices() == 402
    assert await gateway.count_devices(filter=REST_FILTER) == 2
    with pytest.raises(GraphError):
        await gateway.count_devices(filter="startsWith(nope,'a')")
