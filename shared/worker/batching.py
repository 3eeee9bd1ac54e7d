"""Group commits for many concurrent commands: audit appends and Graph device writes.

Each handler still awaits its own entry or write (an intent is durable before its write goes out); the
writers only let many handlers share one SQLite/Table transaction and one gateway call, which sends
$batch requests of 20 paced at the write budget. Batching, ordering, failure and cancellation are
shared.batcher's: a handler cancelled before its write went out never has it sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.batcher import Batcher, Sleep
from shared.ports import AuditEntry, AuditLog, GraphPort, GraphResult

#: Seconds a device write waits for others to join its $batch (a few ms: concurrent handlers fill the group).
WRITE_LINGER_SECONDS = 0.005


class AuditWriter:
    """Appends entries; concurrent callers are committed together (one transaction per group)."""

    def __init__(self, audit: AuditLog, *, max_group: int = 500) -> None:
        self.audit = audit
        self._batcher: Batcher[Sequence[AuditEntry], None] = Batcher(self._append_groups, max_batch=max_group)

    @property
    def groups(self) -> int:
        """Transactions committed so far."""
        return self._batcher.flushes

    async def append(self, *entries: AuditEntry) -> None:
        """Durably append `entries` (all or none, in order); raises what the store raises (AuditUnavailable)."""
        await self._batcher.submit(entries)

    async def _append_groups(self, groups: Sequence[Sequence[AuditEntry]]) -> list[None]:
        await self.audit.append_many([entry for entries in groups for entry in entries])
        return [None] * len(groups)


class DeviceWriter:
    """PATCH/DELETE devices; writes from concurrent handlers go out together through the gateway's $batch."""

    def __init__(self, graph: GraphPort, *, max_group: int = 80, parallel: int = 4, sleep: Sleep | None = None) -> None:
        self.graph = graph
        options: dict[str, Any] = {"max_batch": max_group, "delay": WRITE_LINGER_SECONDS, "parallel": max(1, parallel // 2)}
        if sleep is not None:
            options["sleep"] = sleep
        self._patches: Batcher[tuple[str, Mapping[str, Any]], GraphResult] = Batcher(self._send_patches, **options)
        self._deletes: Batcher[str, GraphResult] = Batcher(self._send_deletes, **options)

    @property
    def calls(self) -> int:
        """Gateway calls that answered so far."""
        return self._patches.flushes + self._deletes.flushes

    async def patch(self, object_id: str, body: Mapping[str, Any]) -> GraphResult:
        return await self._patches.submit((object_id, body))

    async def delete(self, object_id: str) -> GraphResult:
        return await self._deletes.submit(object_id)

    async def _send_patches(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[GraphResult]:
        return _one_each("PATCH", changes, await self.graph.update_devices(list(changes)))

    async def _send_deletes(self, object_ids: Sequence[str]) -> list[GraphResult]:
        return _one_each("DELETE", object_ids, await self.graph.delete_devices(list(object_ids)))


def _one_each(method: str, sent: Sequence[object], results: list[GraphResult]) -> list[GraphResult]:
    """A gateway that answers a different number of results is a bug: fail the group, never guess a match."""
    if len(results) != len(sent):
        raise RuntimeError(f"gateway answered {len(results)} results for {len(sent)} {method} requests")
    return results
