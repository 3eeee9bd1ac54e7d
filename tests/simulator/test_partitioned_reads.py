"""What a partitioned scan needs from the simulator: startsWith(deviceId) without advanced query, the non-hex rest
under advanced query, $count with a filter, devices with irregular deviceIds, and latency that is jittered, seeded,
injectable and added after the request was charged (so concurrent requests each cost their units on arrival)."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.models import DEVICE_SELECT
from shared.scan.partitions import REST_FILTER, partitions_for
from simulator import Faults, Limits, Tenant
from simulator.irregular import add_irregular_devices
from tests.simulator.helpers import EVENTUAL, all_pages, assert_graph_error, client

SELECT = ",".join(DEVICE_SELECT)


async def test_device_id_partitions_are_disjoint_and_cover_every_device(small_tenant: Tenant, start_simulator: Any) -> None:
    irregular = set(add_irregular_devices(small_tenant, 4))
    sim = await start_simulator(small_tenant)
    seen: list[str] = []
    async with client(sim) as http:
        for partition in partitions_for(16):
            rest = partition.prefix is None
            params = {"$filter": partition.filter, "$select": SELECT, "$top": "37"} | ({"$count": "true"} if rest else {})
            items, pages = await all_pages(http, "/devices", params, EVENTUAL if rest else None)
            assert all(partition.covers(item["deviceId"]) for item in items)
            if rest:
                assert {item["id"] for item in items} == irregular and pages[0]["@odata.count"] == 4
                assert {item["deviceId"] is None for item in items} == {True, False}
            seen += [item["id"] for item in items]
        basic_rest = await http.get("/devices", params={"$filter": REST_FILTER})
    assert sorted(seen) == sorted(small_tenant.object_ids()) and len(seen) == 404
    assert "advanced query" in assert_graph_error(basic_rest, 400, "Request_UnsupportedQuery")["message"]


async def test_count_with_a_filter_is_an_advanced_query(small_tenant: Tenant, start_simulator: Any) -> None:
    add_irregular_devices(small_tenant, 3)
    sim = await start_simulator(small_tenant)
    async with client(sim) as http:
        everything = await http.get("/devices/$count", headers=EVENTUAL)
        rest = await http.get("/devices/$count", params={"$filter": REST_FILTER}, headers=EVENTUAL)
        hex_a = await http.get("/devices/$count", params={"$filter": "startsWith(deviceId,'A')"}, headers=EVENTUAL)
        without_header = await http.get("/devices/$count", params={"$filter": REST_FILTER})
    expected_a = sum(1 for oid in small_tenant.object_ids() if (small_tenant.device_json(oid)["deviceId"] or "")[:1] == "a")
    assert everything.text == "403" and rest.text == "3" and int(hex_a.text) == expected_a > 0
    assert everything.headers["Content-Type"].startswith("text/plain")
    assert_graph_error(without_header, 400)


async def test_irregular_device_ids_are_in_the_ground_truth_and_cannot_be_looked_up_by_device_id(small_tenant: Tenant) -> None:
    before = small_tenant.truth.class_counts()
    added = add_irregular_devices(small_tenant, 3)
    after = small_tenant.truth.class_counts()
    assert after["healthy"] == before["healthy"] + 2 and after["stale"] == before["stale"] + 1
    device_ids = [small_tenant.device_json(oid)["deviceId"] for oid in added]
    assert device_ids[0] is None and device_ids[1].startswith("{") and device_ids[1].endswith("}")
    store = small_tenant.devices
    assert [store.device_id(store.find(oid)) for oid in added] == device_ids
    assert store.find_by_device_id(device_ids[1]) is None


async def test_latency_is_added_after_serving_jittered_seeded_and_injectable(small_tenant: Tenant, start_simulator: Any) -> None:
    runs = []
    for _ in range(2):
        sim = await start_simulator(small_tenant, faults=Faults(latency_ms=100, latency_jitter_ms=20, seed=4))
        delays: list[float] = []

        async def record(seconds: float, delays: list[float] = delays) -> None:
            delays.append(seconds)

        sim.pipeline.sleep = record
        async with client(sim) as http:
            for _ in range(6):
                assert (await http.get("/devices", params={"$top": "1"})).status_code == 200
        runs.append(delays)
    assert runs[0] == runs[1] and len(set(runs[0])) == 6
    assert all(0.08 <= d <= 0.12 for d in runs[0])
    assert Faults(latency_ms=50, match="^PATCH ").latency_s("GET /devices") == 0.0


async def test_concurrent_requests_are_each_charged_when_they_arrive(small_tenant: Tenant, start_simulator: Any) -> None:
    """12 requests held in flight by the latency against a 10-unit budget: 10 pass, 2 are throttled, and the
    answers past 80 % of the budget carry x-ms-throttle-limit-percentage."""
    sim = await start_simulator(small_tenant, limits=Limits(resource_units_per_10s=10), faults=Faults(latency_ms=1000))
    sim.pipeline.clock = lambda: 0.0
    arrived, release = [], asyncio.Event()

    async def hold(seconds: float) -> None:
        arrived.append(seconds)
        if len(arrived) == 12:
            release.set()
        await release.wait()

    sim.pipeline.sleep = hold
    async with client(sim) as http:
        responses = await asyncio.gather(*(http.get("/devices", params={"$top": "1"}) for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 10 + [429] * 2 and sim.stats.throttled == 2
    assert sim.stats.peak_in_flight == 12 and sim.stats.in_flight == 0
    assert sum("x-ms-throttle-limit-percentage" in r.headers for r in responses if r.status_code == 200) == 3
