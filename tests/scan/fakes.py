"""Small in-memory ports for the scan's unit tests (the simulator tests use the real adapters)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime

from shared.errors import AuditUnavailable, GraphError
from shared.models import Device
from shared.ports import AuditEntry, AuditRecord, GraphResult, OutgoingMessage


class FakeGraph:
    """Serves a device list in pages; records mail; can fail after some pages."""

    def __init__(self, devices: Sequence[Device], *, page_size: int = 7, groups: dict[str, set[str]] | None = None) -> None:
        self.devices = list(devices)
        self.page_size = page_size
        self.groups = groups or {}
        self.mails: list[tuple[str, list[str], str, str]] = []
        self.fail_after_pages: int | None = None
        self.mail_status = 202
        self.calls: list[tuple[str | None, tuple[str, ...] | None]] = []

    async def iter_devices(
        self, *, filter: str | None = None, select: Iterable[str] | None = None, page_size: int = 999
    ) -> AsyncIterator[list[Device]]:
        self.calls.append((filter, tuple(select) if select is not None else None))
        for number, start in enumerate(range(0, len(self.devices), self.page_size)):
            if self.fail_after_pages is not None and number >= self.fail_after_pages:
                raise GraphError("simulated outage", status=503, request_id="req-1", transient=True)
            yield self.devices[start : start + self.page_size]

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

    async def close(self) -> None:
        pass
