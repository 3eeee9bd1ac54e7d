"""Writes: $batch of up to 20, inner 429s re-sent after Retry-After, results in input order, the write pacer."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable

from shared.graph import GraphGateway
from shared.graph.pacer import WritePacer
from simulator import Limits, Tenant
from tests.graph.conftest import Starter, virtual_retry


def tag(n: int) -> dict:
    return {"extensionAttributes": {"extensionAttribute7": f"janitor-{n}"}}


async def test_batch_writes_with_inner_429s_all_land_in_input_order(
    simulator, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = simulator.tenant
    oids = tenant.object_ids()[:45]
    simulator.faults.match = "^PATCH /devices/"
    simulator.faults.storm_retry_after = 1
    simulator.faults.throttle_next = 7  # seven inner requests of the first batch answer 429 + Retry-After: 1
    retry, clock = virtual_retry()
    gateway = make_gateway(simulator, retry=retry)

    results = await gateway.update_devices([(oid, tag(n)) for n, oid in enumerate(oids)])

    assert [r.status for r in results] == [204] * 45
    assert simulator.stats.throttled == 7
    assert len(clock.slept) == 1 and 1.0 <= clock.slept[0] <= 1.1  # the re-sent ones waited for Retry-After
    assert simulator.stats.batches == 4  # 20 + 20 + 5, then one batch of the seven throttled ones
    written = {w.request_id: w.object_id for w in tenant.writes}
    assert len(written) == 45
    # Each result carries the inner request-id of its own write, in input order (Graph answers in any order).
    assert [written[r.request_id] for r in results] == oids
    for n, oid in enumerate(oids):
        assert tenant.device_json(oid)["extensionAttributes"]["extensionAttribute7"] == f"janitor-{n}"


async def test_delete_reports_a_device_already_gone_as_404(simulator, make_gateway: Callable[..., GraphGateway]) -> None:
    tenant = simulator.tenant
    oids = tenant.object_ids()[:3]
    gone = "00000000-0000-0000-0000-0000000000aa"
    results = await make_gateway(simulator).delete_devices([oids[0], gone, oids[1], oids[2]])
    assert [r.status for r in results] == [204, 404, 204, 204]
    assert results[1].error_code == "Request_ResourceNotFound" and results[1].request_id
    assert "does not exist" in (results[1].error_message or "")
    assert all(tenant.device_json(oid) is None for oid in oids)


async def test_refused_write_is_an_outcome_not_an_exception(simulator, make_gateway: Callable[..., GraphGateway]) -> None:
    tenant = simulator.tenant
    oid = tenant.object_ids()[0]
    [bad, good] = await make_gateway(simulator).update_devices([(oid, {"displayName": "x"}), (oid, tag(1))])
    assert bad.status == 400 and bad.error_code == "Request_BadRequest" and "rejected PATCH" in (bad.error_message or "")
    assert good.status == 204


def most_in_any_window(tenant: Tenant, seconds: float) -> int:
    stamps = sorted(w.at.timestamp() for w in tenant.writes)
    return max(bisect_left(stamps, stamps[i] + seconds) - i for i in range(len(stamps)))


async def test_the_pacer_keeps_writes_under_the_budget(
    make_tenant: Callable[..., Tenant], start_simulator: Starter, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = make_tenant()
    sim = await start_simulator(tenant, limits=Limits(resource_units_per_10s=None, write_budget=60, write_window_s=1.0))
    gateway = make_gateway(sim, pacer=WritePacer(50, 1.0))
    oids = tenant.object_ids()[:100]

    started = time.monotonic()
    results = await gateway.update_devices([(oid, tag(n)) for n, oid in enumerate(oids)])
    elapsed = time.monotonic() - started

    assert [r.status for r in results] == [204] * 100
    assert sim.stats.throttled == 0  # never ran into the server's budget
    assert most_in_any_window(tenant, 1.0) <= 60
    pacer = gateway.pacer
    assert pacer.released == 100
    assert elapsed >= (100 - pacer.burst) / pacer.rate * 0.95  # could not go faster than the pacer's rate


async def test_without_pacing_the_server_throttles_and_retries_still_land_everything(
    make_tenant: Callable[..., Tenant], start_simulator: Starter, make_gateway: Callable[..., GraphGateway]
) -> None:
    tenant = make_tenant()
    sim = await start_simulator(tenant, limits=Limits(resource_units_per_10s=None, write_budget=60, write_window_s=1.0))
    gateway = make_gateway(sim)  # a pacer with a budget far above the server's
    oids = tenant.object_ids()[:100]
    results = await gateway.update_devices([(oid, tag(n)) for n, oid in enumerate(oids)])
    assert [r.status for r in results] == [204] * 100
    assert sim.stats.throttled >= 40  # the server's 60-per-second budget refused the rest at first
    assert len(tenant.writes) == 100
