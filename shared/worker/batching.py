"""Group commits for many concurrent commands: audit appends and Graph device writes.

Each handler still awaits its own entry or write (an intent is durable before its write goes out); the
batchers only let many handlers share one SQLite/Table transaction and one gateway call, which sends
$batch requests of 20 paced at the write budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from shared.ports import AuditEntry, AuditLog, GraphPort, GraphResult


class AuditWriter:
    """Appends entries; concurrent callers are committed together (one transaction per group)."""

    def __init__(self, audit: AuditLog, *, max_group: int = 500) -> None:
        self.audit = audit
        self._max_group = max_group
        self._pending: list[tuple[list[AuditEntry], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.groups = 0

    async def append(self, *entries: AuditEntry) -> None:
        """Durably append `entries` (all or none, in order); raises what the store raises (AuditUnavailable)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((list(entries), future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let callers that are ready join this group
        while self._pending:
            group, self._pending = self._pending[: self._max_group], self._pending[self._max_group :]
            flat = [entry for entries, _ in group for entry in entries]
            try:
                await self.audit.append_many(flat)
            except BaseException as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                self.groups += 1
                for _, future in group:
                    if not future.done():
                        future.set_result(None)


class DeviceWriter:
    """PATCH/DELETE devices; writes from concurrent handlers go out together through the gateway's $batch."""

    def __init__(self, graph: GraphPort, *, max_group: int = 80, parallel: int = 4) -> None:
        self.graph = graph
        self._max_group = max_group
        self._gate = asyncio.Semaphore(parallel)
        self._pending: dict[str, list[tuple[str, Mapping[str, Any] | None, asyncio.Future[GraphResult]]]] = {
            "PATCH": [],
            "DELETE": [],
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self._scheduled: dict[str, bool] = {"PATCH": False, "DELETE": False}
        self.calls = 0

    async def patch(self, object_id: str, body: Mapping[str, Any]) -> GraphResult:
        return await self._submit("PATCH", object_id, body)

    async def delete(self, object_id: str) -> GraphResult:
        return await self._submit("DELETE", object_id, None)

    async def _submit(self, method: str, object_id: str, body: Mapping[str, Any] | None) -> GraphResult:
        future: asyncio.Future[GraphResult] = asyncio.get_running_loop().create_future()
        self._pending[method].append((object_id, body, future))
        if len(self._pending[method]) >= self._max_group:
            self._start(method)
        elif not self._scheduled[method]:
            self._scheduled[method] = True
            task = asyncio.create_task(self._soon(method))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _soon(self, method: str) -> None:
        await asyncio.sleep(0.005)  # a few ms lets concurrent handlers fill the group
        self._scheduled[method] = False
        if self._pending[method]:
            self._start(method)

    def _start(self, method: str) -> None:
        group, self._pending[method] = self._pending[method][: self._max_group], self._pending[method][self._max_group :]
        task = asyncio.create_task(self._send(method, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, method: str, group: Sequence[tuple[str, Mapping[str, Any] | None, asyncio.Future[GraphResult]]]
    ) -> None:
        async with self._gate:
            try:
                if method == "PATCH":
                    results = await self.graph.update_devices([(oid, body or {}) for oid, body, _ in group])
                else:
                    results = await self.graph.delete_devices([oid for oid, _, _ in group])
                self.calls += 1
            except Exception as exc:
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                return
        if len(results) != len(group):
            error = RuntimeError(f"gateway answered {len(results)} results for {len(group)} {method} requests")
            for _, _, future in group:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, _, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)
