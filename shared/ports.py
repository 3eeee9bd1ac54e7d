"""Ports: the small interfaces the core talks to. Each has two adapters (cloud and embedded).

Queue: Service Bus in Azure, SQLite locally. Audit log: Table Storage in Azure, SQLite locally.
Graph: the msgraph-sdk gateway (pointed at the simulator locally and in tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.models import Device

# --------------------------------------------------------------------------- queue


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to enqueue. `message_id` is deterministic so duplicate sends are dropped."""

    message_id: str
    body: bytes
    subject: str | None = None
    scheduled_at: datetime | None = None  # aware UTC; None = now
    properties: Mapping[str, str | int | bool] = field(default_factory=dict[str, str | int | bool])


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message under a peek-lock. Complete, abandon or dead-letter it before the lock expires."""

    message_id: str
    body: bytes
    delivery_count: int
    lock_token: str
    subject: str | None = None
    enqueued_at: datetime | None = None
    # the sender's application properties
    properties: Mapping[str, str | int | bool] = field(default_factory=dict[str, str | int | bool])


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message moved to the dead-letter store, with why."""

    message_id: str
    body: bytes
    reason: str
    description: str
    delivery_count: int
    dead_lettered_at: datetime


class QueueSender(Protocol):
    """Sends commands. Duplicate message ids within the detection window are dropped silently."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> int:
        """Send in batches; returns how many were handed to the queue."""
        ...

    async def close(self) -> None: ...


class QueueReceiver(Protocol):
    """Peek-lock receiver (the embedded queue; in Azure the Functions host plays this part)."""

    async def receive(self, max_messages: int = 1, wait_seconds: float = 0.0) -> list[ReceivedMessage]: ...

    async def complete(self, message: ReceivedMessage) -> None: ...

    async def abandon(self, message: ReceivedMessage) -> None: ...

    async def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What a caller asks to append. The store adds sequence, timestamps and the hash chain."""

    kind: str  # run | decision | gate | intent | outcome | ticket | notice
    run_id: str | None = None
    command_id: str | None = None
    ticket: str | None = None
    device_object_id: str | None = None  # Graph `id`
    device_id: str | None = None  # Graph `deviceId`
    display_name: str | None = None
    decision: str | None = None  # terminal: acted | dry_run | skipped | blocked | deferred | failed
    action: str | None = None  # disable | delete | tag | notify | scope_check | diagnose | none
    reason: str | None = None
    actor: str = "entra-janitor"
    data: Mapping[str, Any] = field(default_factory=dict[str, Any])  # JSON-serialisable detail


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored, chained audit record. `hash` covers every field but itself, plus `prev_hash`."""

    partition: str  # UTC day, YYYY-MM-DD: time-range queries read only the days they cover
    seq: int  # position in the partition's chain, from 1
    record_id: str  # "<partition>:<seq:010d>"
    at: datetime
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters; all optional and combined with AND. `device` matches display name, id or deviceId."""

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    run_id: str | None = None
    command_id: str | None = None
    device: str | None = None
    decision: str | None = None
    action: str | None = None
    ticket: str | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    continuation: str | None  # pass back to get the next page; None when done


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where verification found the chain broken, and how."""

    partition: str
    seq: int
    problem: str  # e.g. "hash mismatch (record edited)", "gap: seq 7 missing", "prev_hash mismatch"


class AuditLog(Protocol):
    """Append-only, hash-chained audit store."""

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Durably append; raises AuditUnavailable when the store cannot be written."""
        ...

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Append several entries in order, in as few transactions as the store allows."""
        ...

    async def query(self, query: AuditQuery, *, limit: int = 500, continuation: str | None = None) -> AuditPage: ...

    def iter_records(self, query: AuditQuery) -> AsyncIterator[AuditRecord]:
        """Every matching record, oldest first, page by page."""
        ...

    async def verify(self, since: datetime | None = None, until: datetime | None = None) -> list[ChainBreak]:
        """Walk the hash chains; an empty list means intact."""
        ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- graph


@dataclass(frozen=True, slots=True)
class GraphResult:
    """Outcome of one Graph write: status and Graph's request-id (recorded in the audit log)."""

    status: int
    request_id: str | None
    body: Mapping[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    display_name: str | None
    user_principal_name: str | None
    mail: str | None


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A group a device is a direct member of (what a restore is checked against)."""

    id: str
    display_name: str | None


@dataclass(frozen=True, slots=True)
class DeletedDevice:
    """A device in deleted items (device soft delete, Graph beta): restorable until 30 days after `deleted_at`."""

    device: Device
    deleted_at: datetime | None


class RequestGate(Protocol):
    """Bounds how many reads are out at once and hears how Graph answered each (see shared.graph.concurrency)."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...

    def observe(self, status: int, throttle_percent: float | None) -> None: ...


class GraphPort(Protocol):
    """What the core needs from Microsoft Graph. The adapter is `shared.graph.gateway.GraphGateway`."""

    def iter_devices(
        self,
        *,
        filter: str | None = None,
        select: Iterable[str] | None = None,
        page_size: int = 999,
        gate: RequestGate | None = None,
        prefetch: bool = True,
    ) -> AsyncIterator[list[Device]]:
        """Pages of devices, decoded raw with msgspec; never more than a page or two in memory (one without
        `prefetch`). Each page request waits for a place in `gate` (when given) and reports its answer to it.
        """
        ...

    async def count_devices(self, *, filter: str | None = None) -> int:
        """/devices/$count (an eventually consistent advanced query)."""
        ...

    async def get_device(self, object_id: str) -> Device | None:
        """None when the device no longer exists."""
        ...

    async def find_devices(self, name_or_id: str) -> list[Device]:
        """By object id, deviceId, or exact displayName."""
        ...

    async def update_devices(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[GraphResult]:
        """PATCH many devices (via $batch, 20 at a time, inner 429s retried). Results in input order."""
        ...

    async def delete_devices(self, object_ids: Sequence[str]) -> list[GraphResult]:
        """DELETE many devices via $batch; a 404 is reported as status 404 (caller treats it as done)."""
        ...

    async def registered_owners(self, object_id: str) -> list[Owner]: ...

    async def group_device_ids(self, group_id: str) -> set[str]:
        """Object ids of the devices that are transitive members of a group (protected groups)."""
        ...

    async def get_user(self, user: str) -> Owner | None:
        """By object id or UPN."""
        ...

    async def check_member_groups(self, user_id: str, group_ids: Sequence[str]) -> set[str]: ...

    async def device_registration_policy(self) -> Mapping[str, Any]: ...

    async def bitlocker_key_ids(self, device_id: str) -> list[str]: ...

    async def managed_device_last_sync(self, device_id: str) -> datetime | None:
        """lastSyncDateTime of the Intune record for this deviceId; None when not enrolled."""
        ...

    async def laps_credential_present(self, device_id: str) -> bool:
        """Whether Entra ID stores a Windows LAPS password for this deviceId (a delete would destroy it).

        GET /directory/deviceLocalCredentials/{deviceId} (metadata only): 200 -> True, 404 -> False; any other
        failure raises, and the caller must then treat a credential as possibly present.
        """
        ...

    async def user_registered_devices(self, user_id: str) -> list[Device]: ...

    async def send_mail(self, sender: str, to: Sequence[str], subject: str, body_html: str) -> GraphResult: ...

    async def device_groups(self, object_id: str) -> list[GroupRef]:
        """The groups the device is a direct member of (GET /devices/{id}/memberOf/microsoft.graph.group)."""
        ...

    async def deleted_device(self, object_id: str) -> DeletedDevice | None:
        """The device in deleted items (GET /beta/directory/deletedItems/{id}); None when it is not there: live,
        hybrid (deleted for good at once), deleted more than 30 days ago, or never existed."""
        ...

    async def restore_deleted_device(self, object_id: str) -> GraphResult:
        """POST /beta/directory/deletedItems/{id}/restore: a device write; Graph's refusal comes back as a result."""
        ...

    async def close(self) -> None: ...
