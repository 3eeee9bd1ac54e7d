"""Small in-memory ports for the scan's unit tests (the simulator tests use the real adapters)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.errors import AuditUnavailable, GraphError, GraphUnavailable
from shared.models import Device
from shared.ports import AuditEntry, AuditQuery, AuditRecord, GraphResult, OutgoingMessage
from shared.scan.partitions import PARTITION_CHOICES, partitions_for

#: Every filter the scan's reader sends, and the partition it names.
PARTITION_BY_FILTER = {p.filter: p for n in PARTITION_CHOICES for p in partitions_for(n)}


class FakeGraph:
    """Serves a device list in pages (filtered by the reader's deviceId partitions); records mail; can fail after some
    pages. `counts` are the /devices/$count answers to give, in order (then the true count); `ignore_filter` serves
    every device whatever the filter, as a server that does not support it might."""

    def __init__(self, devices: Sequence[Device], *, page_size: int = 7, groups: dict[str, set[str]] | None = None) -> None:
        self.devices = list(devices)
        self.page_size = page_size
        self.groups = groups or {}
        self.mails: list[tuple[str, list[str], str, str]] = []
        self.fail_after_pages: int | None = None
        self.mail_status = 202
        self.calls: list[tuple[str | None, tuple[str, ...] | None]] = []
        self.counts: list[int] = []
        self.ignore_filter = False
        self.pages_served = 0

    async def iter_devices(
        self, *, filter: str | None = None, select: Iterable[str] | None = None, page_size: int = 999, gate: Any = None,
        prefetch: bool = True,
    ) -> AsyncIterator[list[Device]]:
        self.calls.append((filter, tuple(select) if select is not None else None))
        partition = PARTITION_BY_FILTER[filter]
        matching = [d for d in self.devices if self.ignore_filter or partition.covers(d.device_id)]
        for start in range(0, len(matching), self.page_size):
            if self.fail_after_pages is not None and self.pages_served >= self.fail_after_pages:
                raise GraphUnavailable("simulated outage", status=503, request_id="req-1")
            self.pages_served += 1
            yield matching[start : start + self.page_size]

    async def count_devices(self, *, filter: str | None = None) -> int:
        return self.counts.pop(0) if self.counts else len(self.devices)

    async def group_device_ids(self, group_id: str) -> set[str]:
        if group_id not in self.groups:
            raise GraphError(f"group {group_id} not found", status=404)
        return set(self.groups[group_id])

    async def send_mail(self, sender: str, to: Sequence[str], subject: str, body_html: str) -> GraphResult:
        self.mails.append((sender, list(to), subject, body_html))
        return GraphResult(status=self.mail_status, request_id="mail-req-1")


class FakeQueue:
    """Keeps the first message per MessageId (duplicate detection); counts every hand-over like Service Bus."""

    def __init__(self) -> None:
        self.messages: dict[str, OutgoingMessage] = {}
        self.sends: list[int] = []

    async def send(self, messages: Sequence[OutgoingMessage]) -> int:
        self.sends.append(len(messages))
        for message in messages:
            self.messages.setdefault(message.message_id, message)
        return len(messages)

    async def close(self) -> None:
        pass


class FakeAudit:
    """Append-only list; `down` makes every append fail like a store that cannot be written."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.down = False

    async def append(self, entry: AuditEntry) -> AuditRecord:
        if self.down:
            raise AuditUnavailable("audit store down")
        self.entries.append(entry)
        n = len(self.entries)
        return AuditRecord("2026-06-01", n, f"2026-06-01:{n:010d}", datetime.now(UTC), entry, "", "")

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        return [await self.append(entry) for entry in entries]

    def of(self, kind: str) -> list[AuditEntry]:
        return [e for e in self.entries if e.kind == kind]

    async def iter_records(self, query: AuditQuery) -> AsyncIterator[AuditRecord]:
        """The entries matching the query's kind, decision and device (what the scan reads: keeps)."""
        for n, entry in enumerate(self.entries, start=1):
            wanted = (query.kind, query.decision, query.device)
            found = (entry.kind, entry.decision, entry.device_object_id)
            if all(w is None or w == f for w, f in zip(wanted, found, strict=True)):
                yield AuditRecord("2026-06-01", n, f"2026-06-01:{n:010d}", datetime.now(UTC), entry, "", "")

    async def close(self) -> None:
        pass
