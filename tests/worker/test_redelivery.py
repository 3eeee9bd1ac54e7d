"""Audit discipline: intent before write, outcome after; crashes, redeliveries and a dead audit store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.commands import encode
from shared.errors import AuditUnavailable, GraphThrottled, TransientError
from shared.ports import AuditEntry
from shared.tags import Tag
from shared.worker.records import invalid_command_id
from tests.worker.conftest import decisions_of, records_of
from tests.worker.fakes import NOW, FakeGraph, command, device


class FlakyAudit:
    """Wraps a real audit log; fails appends of the kinds listed in `fail_kinds` (or all when None)."""

    def __init__(self, inner, fail_kinds: set[str] | None = None) -> None:
        self.inner = inner
        self.fail_kinds = fail_kinds

    def _check(self, entries: list[AuditEntry]) -> None:
        if self.fail_kinds is None or any(e.kind in self.fail_kinds for e in entries):
            raise AuditUnavailable("audit store is down (test)")

    async def append(self, entry: AuditEntry):
        self._check([entry])
        return await self.inner.append(entry)

    async def append_many(self, entries):
        self._check(list(entries))
        return await self.inner.append_many(entries)

    def iter_records(self, query):
        return self.inner.iter_records(query)

    async def query(self, *a, **kw):
        return await self.inner.query(*a, **kw)


async def test_intent_before_write_and_outcome_after(make_worker, audit):
    dev = device("a1")
    graph = FakeGraph(dev)
    cmd = command(dev)
    await make_worker(graph).handle(encode(cmd), message_id=cmd.command_id)
    kinds = [r.entry.kind for r in await records_of(audit, cmd.command_id)]
    assert kinds == ["intent", "outcome", "decision"]
    outcome = (await records_of(audit, cmd.command_id))[1].entry
    assert outcome.data["status"] == 204 and outcome.data["request_id"]
    assert outcome.data["before"]["accountEnabled"] is True and outcome.data["after"]["accountEnabled"] is False


async def test_audit_down_means_no_graph_write(make_worker, audit):
    dev = device("a2")
    graph = FakeGraph(dev)
    cmd = command(dev)
    worker = make_worker(graph)
    worker.audit = FlakyAudit(audit)
    worker.audit_writer.audit = worker.audit
    with pytest.raises(AuditUnavailable):
        await worker.handle(encode(cmd), message_id=cmd.command_id)
    assert graph.writes == []
    assert await records_of(audit, cmd.command_id) == []


async def test_crash_between_intent_and_outcome_does_not_act_twice(make_worker, audit):
    dev = device("a3")
    graph = FakeGraph(dev)
    cmd = command(dev)
    first = make_worker(graph)
    first.audit = FlakyAudit(audit, fail_kinds={"outcome"})  # the write happens, its outcome is never recorded
    first.audit_writer.audit = first.audit
    with pytest.raises(AuditUnavailable):
        await first.handle(encode(cmd), message_id=cmd.command_id)
    assert len(graph.writes) == 1
    assert [r.entry.kind for r in await records_of(audit, cmd.command_id)] == ["intent"]

    second = make_worker(graph)  # the redelivery, in a fresh process
    handled = await second.handle(encode(cmd), message_id=cmd.command_id, delivery_count=2)
    assert handled.decision == "acted" and handled.settle == "complete"
    assert len(graph.writes) == 1, "the redelivery must not write again"
    decisions = await decisions_of(audit, cmd.command_id)
    assert len(decisions) == 1 and decisions[0].entry.data["reconciled"] is True

    third = make_worker(graph)  # and a duplicate delivery after that only completes
    again = await third.handle(encode(cmd), message_id=cmd.command_id, delivery_count=3)
    assert again.redelivered and len(graph.writes) == 1
    assert len(await decisions_of(audit, cmd.command_id)) == 1


async def test_crash_before_the_write_acts_once_on_redelivery(make_worker, audit):
    dev = device("a4")
    graph = FakeGraph(dev)
    cmd = command(dev)
    graph.write_status = 503  # the write did not go through: transient, retried
    first = make_worker(graph)
    with pytest.raises(TransientError, match="did not go through"):
        await first.handle(encode(cmd), message_id=cmd.command_id)
    graph.write_status = None
    handled = await make_worker(graph).handle(encode(cmd), message_id=cmd.command_id, delivery_count=2)
    assert handled.decision == "acted"
    assert graph.devices["a4"].account_enabled is False
    assert len(await decisions_of(audit, cmd.command_id)) == 1


async def test_delete_finding_device_gone_is_done(make_worker, audit):
    tag = Tag("disabled", NOW - timedelta(days=40), "stale", "run-0").render()
    dev = device("a5", accountEnabled=False, extensionAttributes={"extensionAttribute15": tag})
    graph = FakeGraph(dev)
    cmd = command(dev, device_class="expired_disabled", action="delete")
    worker = make_worker(graph)
    real_delete = graph.delete_devices

    async def already_gone(ids):  # someone else deleted it between our read and our write
        graph.devices.clear()
        return await real_delete(ids)

    graph.delete_devices = already_gone
    handled = await worker.handle(encode(cmd), message_id=cmd.command_id)
    assert handled.decision == "acted" and "already gone" in handled.reason


async def test_malformed_messages_are_dead_lettered_and_recorded(make_worker, audit):
    graph = FakeGraph()
    worker = make_worker(graph)
    cases = {
        "m-json": b"{not json",
        "m-version": encode(command(device("v1"))).replace(b'"version":1', b'"version":9'),
        "m-missing": b'{"schema":"entra-janitor/command","version":1,"run_id":"r"}',
    }
    for mid, body in cases.items():
        for delivery in (1, 2):  # a second delivery records nothing new
            handled = await worker.handle(body, message_id=mid, delivery_count=delivery)
            assert handled.settle == "dead_letter" and handled.dead_letter_reason == "InvalidCommand"
        [record] = await records_of(audit, invalid_command_id(mid))
        assert record.entry.decision == "failed" and record.entry.reason.startswith("dead-lettered:")
    assert "version 9" in (await records_of(audit, invalid_command_id("m-version")))[0].entry.reason
    assert "command_id" in (await records_of(audit, invalid_command_id("m-missing")))[0].entry.reason
    assert graph.writes == [] and graph.reads == 0


async def test_transient_failure_on_last_delivery_is_recorded_failed(make_worker, audit):
    dev = device("a6")
    graph = FakeGraph(dev)
    graph.throttle_reads = True
    cmd = command(dev)
    worker = make_worker(graph, max_deliveries=3)
    for delivery in (1, 2):
        with pytest.raises(GraphThrottled, match="throttled"):  # the gateway's own class: transient, retried
            await worker.handle(encode(cmd), message_id=cmd.command_id, delivery_count=delivery)
    handled = await worker.handle(encode(cmd), message_id=cmd.command_id, delivery_count=3)
    assert handled.settle == "dead_letter" and handled.decision == "failed"
    [decision] = await decisions_of(audit, cmd.command_id)
    assert "gave up after 3 deliveries" in decision.entry.reason and decision.entry.data["error"] == "GraphThrottled"
