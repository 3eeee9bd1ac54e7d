"""An audit outage in Azure: the invocation waits in place (message locked) instead of spending deliveries."""

from __future__ import annotations

import pytest

from shared.commands import encode
from shared.errors import AuditUnavailable
from shared.worker import hosted
from shared.worker.hosted import handle_delivery, set_worker_factory
from tests.worker.conftest import decisions_of
from tests.worker.fakes import FakeGraph, command, device
from tests.worker.test_redelivery import FlakyAudit


class DownFor(FlakyAudit):
    """The audit store refuses the first `appends` appends, then works."""

    def __init__(self, inner, appends: int) -> None:
        super().__init__(inner)
        self.left = appends

    def _check(self, entries) -> None:
        if self.left > 0:
            self.left -= 1
            raise AuditUnavailable("audit store is down (test)")


@pytest.fixture
def down_worker(make_worker, audit):
    def build(graph: FakeGraph, appends: int):
        worker = make_worker(graph)
        worker.audit = worker.audit_writer.audit = DownFor(audit, appends)
        set_worker_factory(lambda: worker)
        return worker

    yield build
    set_worker_factory(None)


async def test_a_short_outage_is_waited_out_in_the_same_delivery(down_worker, audit):
    dev = device("o1")
    graph = FakeGraph(dev)
    down_worker(graph, appends=3)
    cmd = command(dev)
    handled = await handle_delivery(encode(cmd), message_id=cmd.command_id, delivery_count=1)
    assert handled.decision == "acted" and len(graph.writes) == 1
    assert len(await decisions_of(audit, cmd.command_id)) == 1


async def test_a_long_outage_gives_the_message_back_having_written_nothing(down_worker, audit, monkeypatch):
    monkeypatch.setattr(hosted, "AUDIT_WAIT_SECONDS", 0.3)
    dev = device("o2")
    graph = FakeGraph(dev)
    down_worker(graph, appends=10_000)
    cmd = command(dev)
    with pytest.raises(AuditUnavailable):
        await handle_delivery(encode(cmd), message_id=cmd.command_id, delivery_count=1)
    assert graph.writes == [] and await decisions_of(audit, cmd.command_id) == []
