"""The nightly job feeds the telemetry counters: what a dashboard shows equals what the audit log says."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry
from shared.audit import SqliteAuditLog
from shared.graph.gateway import GraphGateway
from shared.graph.retry import RetryPolicy
from shared.policy import policy_from_data
from shared.ports import AuditQuery
from shared.queue import SqliteQueue
from shared.worker import Worker
from shared.worker.budget import SqliteBudget
from shared.worker.nightly import run_nightly
from simulator import Faults, Tenant, run_simulator


@pytest.fixture
def reader():
    telemetry.shutdown()
    metric_reader = InMemoryMetricReader()
    assert telemetry.configure({}, metric_reader=metric_reader)
    yield metric_reader
    telemetry.shutdown()


def _totals(reader: InMemoryMetricReader) -> dict[str, dict[tuple, int]]:
    out: dict[str, dict[tuple, int]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    out.setdefault(metric.name, {})[tuple(sorted(point.attributes.items()))] = point.value
    return out


async def test_counters_match_the_run_and_log_lines_carry_the_run_id(reader, tmp_path, caplog):
    tenant = Tenant.generate(devices=400, seed=11, now=datetime(2025, 6, 1, 2, 0, tzinfo=UTC))
    policy = policy_from_data(tenant.reference_policy())  # report mode
    audit = SqliteAuditLog(tmp_path / "audit.sqlite3")
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    budget = SqliteBudget(tmp_path / "budget.sqlite")
    faults = Faults(throttle_next=2, storm_retry_after=1, match="^GET /devices$")
    caplog.set_level(logging.WARNING, logger="shared.graph")
    try:
        async with run_simulator(tenant, faults=faults) as sim:
            graph = GraphGateway(sim.base_url, None, retry=RetryPolicy(max_attempts=4, max_seconds=30))
            worker = Worker(graph, audit, budget, policy, mail_sender=None, clock=lambda: tenant.now)
            try:
                result = await run_nightly(graph, queue, queue, audit, worker, now=tenant.now)
            finally:
                await graph.close()
        decisions = [r.entry async for r in audit.iter_records(AuditQuery(run_id=result.scan.run_id, kind="decision"))]
    finally:
        await queue.close()
        await audit.close()
        await budget.close()

    totals = _totals(reader)
    assert sum(totals["janitor.devices_scanned"].values()) == 400
    findings = {dict(k)["device_class"]: v for k, v in totals["janitor.findings"].items()}
    assert findings == {cls: n for cls, n in tenant.truth.class_counts().items() if n}
    assert sum(totals["janitor.commands_enqueued"].values()) == result.scan.commands_enqueued
    counted = {}
    for key, value in totals["janitor.decisions"].items():
        decision = dict(key)["decision"]
        counted[decision] = counted.get(decision, 0) + value
    recorded = {}
    for entry in decisions:
        recorded[entry.decision] = recorded.get(entry.decision, 0) + 1
    assert counted == recorded and "dry_run" in counted
    assert sum(totals["janitor.graph_throttled"].values()) == 2
    retries = [r for r in caplog.records if "Graph retry" in r.getMessage()]
    assert retries and all(r.run_id == result.scan.run_id for r in retries)
