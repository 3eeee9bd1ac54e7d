"""The worker's shell end to end over HTTP: the real Graph gateway (msgraph-sdk) against the tenant simulator.

The simulator, not a fake, is the oracle here: what a PATCH does to a device, what a re-read shows after a
crash, and how Graph refuses a non-Windows disable are the simulator's (modelled on Graph's documented
behaviour), never a copy of the worker's own assumptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from shared.commands import RemediationCommand, encode
from shared.errors import AuditUnavailable, GraphUnavailable
from shared.graph.gateway import GraphGateway
from shared.graph.pacer import WritePacer
from shared.graph.retry import RetryPolicy
from shared.models import Device
from shared.tags import parse
from shared.worker import Worker, records
from shared.worker.budget import MemoryBudget
from simulator import Limits, RunningSimulator, Tenant
from tests.worker.conftest import decisions_of, enforce, records_of
from tests.worker.fakes import command
from tests.worker.test_redelivery import FlakyAudit

#: One attempt per request: a failure reaches the worker at once (no backoff sleeps in a test).
ONE_ATTEMPT = RetryPolicy(max_attempts=1, max_seconds=5)


@pytest.fixture
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant(devices=0)


@pytest.fixture
async def sim(tenant: Tenant, start_simulator: Callable[..., Awaitable[RunningSimulator]]) -> RunningSimulator:
    return await start_simulator(tenant, limits=Limits.off())


@pytest.fixture
async def gateway(sim: RunningSimulator) -> AsyncIterator[GraphGateway]:
    graph = GraphGateway(sim.base_url, None, retry=ONE_ATTEMPT, pacer=WritePacer(100_000, 150))
    yield graph
    await graph.close()


def _stale(tenant: Tenant, name: str, **kw: Any) -> str:
    kw.setdefault("is_managed", False)
    return tenant.add_device(display_name=name, expected_class="stale", last_sign_in=tenant.now - timedelta(days=200),
                             registered_at=tenant.now - timedelta(days=400), **kw)


async def _command(graph: GraphGateway, object_id: str) -> RemediationCommand:
    """The command the scan would send: the device as Graph shows it now is the snapshot."""
    scanned = await graph.get_device(object_id)
    assert scanned is not None
    return command(scanned)


def _worker(graph: Any, audit: Any, tenant: Tenant, **policy: Any) -> Worker:
    notify = {"admins": [tenant.admin_upn], "digest": False}
    return Worker(graph, audit, MemoryBudget(), enforce(notify=notify, **policy), mail_sender=tenant.sender_upn,
                  clock=lambda: tenant.now, max_deliveries=3)


async def test_a_disable_lands_in_graph_as_its_outcome_record_says(gateway, audit, tenant):
    synced = tenant.now - timedelta(days=60)
    oid = _stale(tenant, "WIN-STALE", is_managed=True, intune_last_sync=synced,
                 extension_attributes={"extensionAttribute3": "AssetTag=INV-1"})  # kept: Graph merges attributes
    cmd = await _command(gateway, oid)
    handled = await _worker(gateway, audit, tenant).handle(encode(cmd), message_id=cmd.command_id)
    assert (handled.decision, handled.action, handled.writes) == ("acted", "disable", 1)

    now = await gateway.get_device(oid)
    assert now is not None and now.account_enabled is False
    tag = parse(now.extension_attributes.get(15) if now.extension_attributes else None)
    assert tag is not None and tag.action == "disabled" and tag.run_id == cmd.run_id
    assert now.extension_attributes is not None and now.extension_attributes.get(3) == "AssetTag=INV-1"
    [outcome] = [r.entry for r in await records_of(audit, cmd.command_id) if r.entry.kind == "outcome"]
    assert outcome.data["status"] == 204 and outcome.data["after"] == records.snapshot(now), "after = Graph's own state"

    [mail] = tenant.outbox
    text = msgspec.json.encode(mail).decode()
    assert tenant.admin_upn in text and "Entra joined device cannot be signed in to" in text
    assert f"last check-in {synced:%Y-%m-%d}" in text and "retire it in Intune first" in text


async def test_a_crash_between_the_write_and_its_record_is_reconciled_from_graph(gateway, audit, tenant):
    oid = _stale(tenant, "WIN-CRASH")
    cmd = await _command(gateway, oid)
    first = _worker(gateway, FlakyAudit(audit, fail_kinds={"outcome"}), tenant)
    with pytest.raises(AuditUnavailable):
        await first.handle(encode(cmd), message_id=cmd.command_id)
    assert [w.object_id for w in tenant.writes] == [oid]

    handled = await _worker(gateway, audit, tenant).handle(encode(cmd), message_id=cmd.command_id, delivery_count=2)
    assert handled.decision == "acted" and "reconciled" in handled.reason
    assert len(tenant.writes) == 1 and len(tenant.write_attempts) == 1, "the redelivery read Graph and wrote nothing"
    [decision] = await decisions_of(audit, cmd.command_id)
    assert decision.entry.data["reconciled"] is True


async def test_a_write_graph_did_not_do_is_retried_and_done_once(gateway, audit, sim, tenant):
    oid = _stale(tenant, "WIN-503")
    cmd = await _command(gateway, oid)
    sim.faults.error_rate_5xx, sim.faults.match = 1.0, "^PATCH /devices/"
    with pytest.raises(GraphUnavailable, match="did not go through"):
        await _worker(gateway, audit, tenant).handle(encode(cmd), message_id=cmd.command_id)
    assert tenant.writes == []

    sim.faults.reset()
    handled = await _worker(gateway, audit, tenant).handle(encode(cmd), message_id=cmd.command_id, delivery_count=2)
    assert handled.decision == "acted" and len(tenant.writes) == 1
    kinds = [r.entry.kind for r in await records_of(audit, cmd.command_id)]
    assert kinds == ["intent", "intent", "outcome", "decision"], "the second delivery gated afresh: a new intent"


class SeesWindows(GraphGateway):
    """Reads say the device runs Windows; Graph's own check, on the write, knows better."""

    async def get_device(self, object_id: str) -> Device | None:
        found = await super().get_device(object_id)
        return None if found is None else msgspec.structs.replace(found, operating_system="Windows")


async def test_graphs_non_windows_refusal_is_a_clear_permanent_failure(sim, audit, tenant):
    oid = _stale(tenant, "MAC-1", operating_system="MacMDM", trust_type="Workplace")
    graph = SeesWindows(sim.base_url, None, retry=ONE_ATTEMPT, pacer=WritePacer(100_000, 150))
    try:
        cmd = await _command(graph, oid)
        handled = await _worker(graph, audit, tenant).handle(encode(cmd), message_id=cmd.command_id)
    finally:
        await graph.close()
    assert (handled.settle, handled.decision) == ("dead_letter", "failed")
    assert handled.reason.startswith("Graph refused the disable for good (400 Request_BadRequest; no permission")
    assert "grant" not in handled.reason.lower()
    assert tenant.device_json(oid)["accountEnabled"] is True and tenant.outbox == []  # type: ignore[index]
