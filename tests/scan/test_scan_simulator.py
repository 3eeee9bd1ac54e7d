"""The scan end to end over HTTP: simulator -> GraphGateway -> run_scan -> SqliteQueue + SqliteAuditLog.

Checked against the simulator's ground truth for a seeded 20,000-device fleet (the truth is computed from the
generator's intent, not by classifying JSON), the breaker on a fleet where 20 % are stale, idempotent
re-runs, and the timer trigger called directly.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
import yaml

from shared.audit import SqliteAuditLog
from shared.classify import ClassifyContext, classify, siblings_of
from shared.commands import RemediationCommand, decode
from shared.graph import GraphGateway
from shared.models import Device
from shared.policy import policy_from_data
from shared.ports import AuditQuery
from shared.queue import SqliteQueue
from shared.scan import protected_device_ids, run_scan
from simulator import Tenant, run_simulator

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
ADMIN = "endpoint-team@contoso.example"
SENDER = "entra-janitor@contoso.example"


@pytest.fixture(scope="module")
def mixed() -> Tenant:
    return Tenant.generate(devices=20_000, seed=7, now=NOW, profile="mixed")


@pytest.fixture(scope="module")
def stale20() -> Tenant:
    return Tenant.generate(devices=20_000, seed=11, now=NOW, profile="stale20")


@pytest.fixture
async def stores(tmp_path):
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    audit = SqliteAuditLog(tmp_path / "audit.sqlite3")
    yield queue, audit
    await queue.close()


async def drain(queue: SqliteQueue) -> list[RemediationCommand]:
    """Every queued command (locked for the rest of the test, never completed)."""
    out: list[RemediationCommand] = []
    while batch := await queue.receive(max_messages=500):
        out.extend(decode(m.body) for m in batch)
    return out


def reference(tenant: Tenant, **extra) -> dict:
    return {**tenant.reference_policy(), **extra}


async def test_full_scan_equals_the_ground_truth(mixed, stores):
    queue, audit = stores
    policy = policy_from_data(reference(mixed))
    async with run_simulator(mixed) as sim:
        graph = GraphGateway(sim.base_url, None)
        try:
            summary = await run_scan(graph, queue, audit, policy, now=mixed.now)
        finally:
            await graph.close()
    truth = mixed.truth
    assert summary.devices_scanned == 20_000
    assert summary.findings == truth.class_counts()
    assert not summary.halted and summary.halt_reason is None
    commands = await drain(queue)
    assert len(commands) == summary.commands_enqueued == len({c.command_id for c in commands})
    by_device = {c.device_object_id: c for c in commands}
    assert len(by_device) == len(commands)  # one command per device
    expected = {i for cls in truth.class_counts() if cls not in ("healthy", "protected") for i in truth.ids_of(cls)}
    assert set(by_device) == expected
    assert all(c.device_class == truth.expected_class(c.device_object_id) for c in commands)
    assert {c.run_id for c in commands} == {summary.run_id}
    records = [r async for r in audit.iter_records(AuditQuery(run_id=summary.run_id, kind="run"))]
    assert len(records) == 1 and records[0].entry.data["findings"] == truth.class_counts()


async def test_every_device_classifies_as_the_truth_says(mixed):
    """Per device, healthy and protected included: classify() over the same JSON Graph serves."""
    policy = policy_from_data(reference(mixed))
    devices = [msgspec.convert(mixed.device_json(i), Device) for i in mixed.object_ids()]
    async with run_simulator(mixed) as sim:
        graph = GraphGateway(sim.base_url, None)
        try:
            protected = await protected_device_ids(graph, policy)
        finally:
            await graph.close()
    ctx = ClassifyContext(policy, mixed.now, protected, siblings_of(devices))
    wrong = [(d.id, mixed.truth.archetype(d.id), classify(d, ctx).device_class.value, mixed.truth.expected_class(d.id))
             for d in devices if classify(d, ctx).device_class != mixed.truth.expected_class(d.id)]
    assert wrong == []


async def test_second_scan_the_same_day_queues_nothing_twice(mixed, stores):
    queue, audit = stores
    policy = policy_from_data(reference(mixed))
    async with run_simulator(mixed) as sim:
        graph = GraphGateway(sim.base_url, None)
        try:
            first = await run_scan(graph, queue, audit, policy, now=mixed.now)
            before = queue.counts()
            later = mixed.now.replace(hour=5)  # the same UTC day; the fleet's edge cases sit 12 h from thresholds
            second = await run_scan(graph, queue, audit, policy, now=later)
        finally:
            await graph.close()
    assert second.run_id != first.run_id and second.findings == first.findings
    assert queue.counts() == before and before["active"] == first.commands_enqueued


async def test_breaker_halts_on_a_fleet_where_20_percent_are_stale(stale20, stores, monkeypatch):
    queue, audit = stores
    monkeypatch.setenv("MAIL_SENDER", SENDER)
    policy = policy_from_data(reference(stale20, mode="enforce", notify={"admins": [ADMIN]}))
    async with run_simulator(stale20) as sim:
        graph = GraphGateway(sim.base_url, None)
        try:
            summary = await run_scan(graph, queue, audit, policy, now=stale20.now)
        finally:
            await graph.close()
    assert summary.findings == stale20.truth.class_counts()
    assert summary.findings["stale"] >= 0.19 * 20_000
    assert summary.halted and summary.halt_reason.startswith("breaker: ")
    assert summary.destructive_proposed > 1_000

    commands = await drain(queue)
    assert commands and {c.proposed_action for c in commands} <= {"report", "notify_onprem"}  # no device write
    assert len(commands) == summary.commands_enqueued

    blocked = [r.entry async for r in audit.iter_records(AuditQuery(run_id=summary.run_id, kind="decision"))]
    assert len(blocked) == summary.blocked == summary.destructive_proposed
    assert {b.decision for b in blocked} == {"blocked"}
    assert {b.action for b in blocked} <= {"tag", "clear_tag", "disable", "delete"}
    assert all(b.reason == summary.halt_reason and b.data["gates"][0]["name"] == "breaker" for b in blocked)
    # every candidate ends exactly once: queued, or blocked
    ends = [c.device_object_id for c in commands] + [b.device_object_id for b in blocked]
    candidates = {i for cls in ("pending", "registration_unclear", "reactivated", "expired_disabled", "duplicate", "stale",
                                "no_signin_record", "unmanaged")
                  for i in stale20.truth.ids_of(cls)}
    assert sorted(ends) == sorted(candidates)

    (run,) = [r.entry async for r in audit.iter_records(AuditQuery(run_id=summary.run_id, kind="run"))]
    assert run.data["halted"] is True and run.data["breaker"]["destructive_proposed"] == summary.destructive_proposed
    mails = [m for m in stale20.outbox if "blast-radius breaker" in m["subject"]]
    assert len(mails) == 1 and mails[0]["to"] == [ADMIN] and mails[0]["from"] == SENDER


async def test_timer_function_runs_the_scan_with_the_configured_adapters(tmp_path, monkeypatch):
    from functions.nightly_scan import nightly_scan

    tenant = Tenant.generate(devices=2_000, seed=3)  # ages measured from the real clock, as the timer's scan does
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(reference(tenant)))
    async with run_simulator(tenant) as sim:
        for name, value in {"GRAPH_BASE_URL": sim.base_url, "GRAPH_AUTH": "anonymous", "JANITOR_POLICY": str(policy_file),
                            "QUEUE_BACKEND": "sqlite", "AUDIT_BACKEND": "sqlite"}.items():
            monkeypatch.setenv(name, value)
        import azure.functions as func

        await nightly_scan.build().get_user_function()(func.TimerRequest(past_due=True))
    from shared.bootstrap import audit_log, queue_sender

    audit = audit_log()
    (run,) = [r.entry async for r in audit.iter_records(AuditQuery(kind="run"))]
    await audit.close()
    assert run.data["trigger"] == "nightly" and run.data["devices_scanned"] == 2_000
    assert run.data["findings"] == tenant.truth.class_counts() and run.data["halted"] is False
    queue = queue_sender()
    assert queue.counts()["active"] == run.data["commands_enqueued"] > 0
    await queue.close()
