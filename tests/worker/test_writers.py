"""The worker's audit and device writers over the one batcher: grouping, all-or-none entries, no hanging writes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from shared.ports import AuditEntry, GraphResult
from shared.worker.batching import AuditWriter, DeviceWriter
from tests.support.manual_time import ManualSleep, settle


class Gateway:
    """Only the two write calls of the Graph port; `hold` keeps every call waiting until it is set."""

    def __init__(self, *, short: bool = False) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.hold: asyncio.Event | None = None
        self.short = short  # answer one result too few (a gateway bug)

    async def _answer(self, method: str, items: list[Any]) -> list[GraphResult]:
        self.calls.append((method, items))
        if self.hold is not None:
            await self.hold.wait()
        answers = [GraphResult(204 if method == "PATCH" else 404, f"req-{i}") for i, _ in enumerate(items)]
        return answers[:-1] if self.short else answers

    async def update_devices(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[GraphResult]:
        return await self._answer("PATCH", list(changes))

    async def delete_devices(self, object_ids: Sequence[str]) -> list[GraphResult]:
        return await self._answer("DELETE", list(object_ids))


async def test_concurrent_writes_share_one_gateway_call_per_method():
    sleep, graph = ManualSleep(), Gateway()
    writer = DeviceWriter(graph, sleep=sleep)  # type: ignore[arg-type]
    patches = [asyncio.create_task(writer.patch(f"d{i}", {"extensionAttribute7": "x"})) for i in range(3)]
    delete = asyncio.create_task(writer.delete("d9"))
    await settle()
    assert graph.calls == []  # lingering for more writes to join
    sleep.elapse()
    assert [r.request_id for r in await asyncio.gather(*patches)] == ["req-0", "req-1", "req-2"]
    assert (await delete).status == 404
    assert sorted(method for method, _ in graph.calls) == ["DELETE", "PATCH"] and writer.calls == 2


async def test_a_full_group_goes_out_without_waiting():
    sleep, graph = ManualSleep(), Gateway()
    writer = DeviceWriter(graph, max_group=2, sleep=sleep)  # type: ignore[arg-type]
    assert len(await asyncio.gather(writer.delete("a"), writer.delete("b"))) == 2  # no sleep was ever released
    assert graph.calls == [("DELETE", ["a", "b"])]


async def test_a_cancelled_gateway_call_does_not_leave_its_writes_hanging():
    graph = Gateway()
    graph.hold = asyncio.Event()
    sleep = ManualSleep()
    writer = DeviceWriter(graph, sleep=sleep)  # type: ignore[arg-type]
    writes = [asyncio.create_task(writer.patch(f"d{i}", {"accountEnabled": False})) for i in range(2)]
    await settle()
    sleep.elapse()
    await settle()
    assert len(graph.calls) == 1
    sending = [t for t in asyncio.all_tasks() if t not in writes and t is not asyncio.current_task()]
    for task in sending:
        task.cancel()  # the tasks the writer runs (say, the host is shutting down)
    await settle()
    assert all(w.cancelled() for w in writes)


async def test_a_gateway_that_miscounts_fails_the_group():
    writer = DeviceWriter(Gateway(short=True), max_group=2)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="1 results for 2 DELETE requests"):
        await asyncio.gather(writer.delete("a"), writer.delete("b"))


class Store:
    """append_many only; fails a transaction holding a `refuse` reason."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[Any]:
        reasons = [e.reason for e in entries]
        self.transactions.append(reasons)
        if "refuse" in reasons:
            raise OSError("store down")
        return []


async def test_each_callers_entries_are_committed_together_and_in_order():
    store = Store()
    writer = AuditWriter(store, max_group=2)  # type: ignore[arg-type]

    def entries(*reasons: str) -> list[AuditEntry]:
        return [AuditEntry(kind="notice", reason=r) for r in reasons]

    outcome = await asyncio.gather(
        writer.append(*entries("a1", "a2")),
        writer.append(*entries("b1")),
        writer.append(*entries("c1", "refuse")),
        writer.append(*entries("d1")),
        return_exceptions=True,
    )
    assert store.transactions == [["a1", "a2", "b1"], ["c1", "refuse", "d1"]]
    assert outcome[:2] == [None, None] and all(isinstance(o, OSError) for o in outcome[2:])
    assert writer.groups == 1
