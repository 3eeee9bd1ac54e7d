"""Ticket intake: validate, resolve the device, record, queue one RemediationCommand. Idempotent.

The request id is deterministic in (source, ticket_id, action) and keyed with a server secret (HMAC): a
resubmission gets the same id and queues nothing new, and nobody can compute another ticket's id. The
intake record is written to the audit log before the command is queued, so every queued ticket command
has a record saying who asked; the worker then applies exactly the gates nightly commands get (a ticket
can never bypass them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from shared import commands, tags
from shared.commands import RemediationCommand, TicketRef
from shared.diagnosis import choose_device, parse_dsregcmd
from shared.diagnosis.gather import NIL_GUID
from shared.errors import TransientError
from shared.graph.deleted import RESTORE_WINDOW_DAYS
from shared.graph.query import is_guid
from shared.jsonshape import is_array, is_dict
from shared.models import Device
from shared.policy import Policy, load_policy, policy_hash
from shared.ports import AuditEntry, AuditLog, GraphPort, OutgoingMessage, QueueSender
from shared.tickets.adapters import to_request
from shared.tickets.callbacks import AllowEntry, CallbackRefused, allowlist_from_settings, check_callback_url
from shared.tickets.payloads import MAX_BODY_BYTES, MAX_JSON_DEPTH, PayloadError, PayloadTooLarge, TicketRequest
from shared.tickets.signature import request_id_key
from shared.tickets.status import records_for
from shared.undo.service import decision_undone, deleted_by_us

#: device_object_id of a ticket command whose device has no tenant object (diagnose / scope_check only).
NO_OBJECT_ID = NIL_GUID
#: Actions that need the device to resolve to exactly one tenant object.
NEEDS_ONE_DEVICE = frozenset({"notify", "disable", "delete", "reenable"})
#: How far back a restore looks for entra-janitor's delete of the device (deleted items keep it 30 days).
RESTORE_LOOKBACK = timedelta(days=RESTORE_WINDOW_DAYS + 1)


def _as_device(value: Any) -> Device | None:
    """A device snapshot from an audit record (None when it is not one)."""
    if not is_dict(value):
        return None
    try:
        return msgspec.convert(value, Device)
    except msgspec.ValidationError:
        return None


def request_id(key: bytes, source: str, ticket_id: str, action: str) -> str:
    """Same (source, ticket_id, action), same id: 32 lowercase hex characters of an HMAC with the server's key
    (an unkeyed hash let anyone with a function key compute ids from ticket numbers and read those tickets)."""
    message = json.dumps(["ticket", source, ticket_id.strip().lower(), action]).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def status_path(rid: str) -> str:
    return f"/api/tickets/{rid}"


def ticket_device_ref(command: RemediationCommand) -> str:
    """The device as the ticket named it (what diagnosis should look up), for any command."""
    ref = command.evidence.get("device_ref") if command.evidence else None
    if isinstance(ref, str) and ref:
        return ref
    return command.device_object_id if command.device_object_id != NO_OBJECT_ID else (command.display_name or "")


@dataclass(frozen=True, slots=True)
class IntakeResult:
    request_id: str
    duplicate: bool  # True when this (source, ticket_id, action) was already accepted: nothing was queued

    @property
    def status_path(self) -> str:
        return status_path(self.request_id)


@dataclass(frozen=True, slots=True)
class TicketConfig:
    """Settings intake needs, read once."""

    allowlist: tuple[AllowEntry, ...]
    policy: Policy
    id_key: bytes  # keys request ids (request_id_key)
    env: Mapping[str, str] | None = None

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None) -> TicketConfig:
        return cls(
            allowlist=allowlist_from_settings(env), policy=load_policy(None, env=env), id_key=request_id_key(env), env=env
        )


def decode_body(body: bytes) -> Any:
    """The JSON body; PayloadTooLarge / PayloadError saying what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,}")
    if not body.strip():
        raise PayloadError(["body: is empty; send a JSON object"])
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError(["body: is not UTF-8 text"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError([f"body: is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
    except RecursionError:
        raise PayloadError([f"body: is not valid JSON, or is nested deeper than {MAX_JSON_DEPTH} levels"]) from None
    except ValueError:  # an integer literal of more than 4,300 digits (Python's conversion limit)
        raise PayloadError(["body: holds a number too long to read (more than 4,300 digits)"]) from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise PayloadError([f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels; ticket payloads need far fewer"])
    return data


def _depth(data: Any) -> int:
    """Nesting depth of decoded JSON, without recursion (the adapters recurse on what passes)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        if is_dict(node) or is_array(node):
            deepest = max(deepest, level)
            children = node.values() if is_dict(node) else node
            stack.extend((child, level + 1) for child in children if is_dict(child) or is_array(child))
    return deepest


class TicketIntake:
    """Accepts ticket requests into the queue. Ports are passed in (tests use fakes; bootstrap the real ones)."""

    def __init__(
        self,
        *,
        sender: QueueSender,
        audit: AuditLog,
        graph: GraphPort,
        config: TicketConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sender = sender
        self.audit = audit
        self.graph = graph
        self.config = config
        self.clock = clock

    async def submit(self, body: bytes, *, source: str | None = None) -> IntakeResult:
        """Validate and queue a raw body. PayloadTooLarge/PayloadError for bad input (nothing queued)."""
        request = to_request(decode_body(body), source=source, env=self.config.env)
        return await self.accept(request)

    async def accept(self, request: TicketRequest) -> IntakeResult:
        if request.callback_url is not None:
            try:
                check_callback_url(request.callback_url, self.config.allowlist)
            except CallbackRefused as exc:
                raise PayloadError([str(exc)]) from None
        rid = request_id(self.config.id_key, request.source, request.ticket_id, request.action)
        earlier = await records_for(self.audit, rid, kind="ticket")
        phases = [r.entry.data.get("phase") for r in earlier if r.entry.data.get("phase") in ("intake", "queue_failed")]
        if phases and phases[-1] == "intake":
            return IntakeResult(rid, duplicate=True)
        now = self.clock()
        undo: dict[str, Any] | None = None
        if request.action == "restore":
            device, undo = await self._resolve_deleted(request, now)
            matches = 1
        else:
            device, matches = await self._resolve(request)
            if request.action == "reenable" and device is not None:
                undo = await self._disable_undone(device)
        command = self._command(request, rid, device, matches, now, undo)
        await self.audit.append(self._record(request, command, "intake", matches))
        message = OutgoingMessage(message_id=rid, body=commands.encode(command), subject="ticket")
        try:
            await self.sender.send([message])
        except Exception as exc:
            await self.audit.append(self._record(request, command, "queue_failed", matches, error=str(exc)))
            raise TransientError(f"the request was recorded but could not be queued; send it again: {exc}") from exc
        return IntakeResult(rid, duplicate=False)

    async def _resolve(self, request: TicketRequest) -> tuple[Device | None, int]:
        """The tenant object the ticket names; PayloadError when an action needs exactly one and there is not."""
        ref = request.device
        # Graph's errors are already transient (throttled, unavailable) or permanent (denied, bad request): the
        # API answers each as its class says (shared.errors), no translation here.
        found = list(await self.graph.find_devices(ref.value))
        if ref.by == "id":
            found = [d for d in found if d.id.lower() == ref.value.lower()]
        elif ref.by == "deviceId":
            found = [d for d in found if (d.device_id or "").lower() == ref.value.lower()]
        elif ref.by == "name":
            found = [d for d in found if (d.display_name or "").lower() == ref.value.lower()]
        if request.action in NEEDS_ONE_DEVICE:
            if not found:
                raise PayloadError(
                    [f"device: {ref.value!r} matches no device in the tenant; {request.action} needs an existing device"]
                )
            if len(found) > 1:
                ids = ", ".join(d.id for d in found[:5])
                raise PayloadError([f"device: {ref.value!r} matches {len(found)} devices ({ids}); name it by id or deviceId"])
            return found[0], 1
        if request.action == "scope_check" and not found and not request.user:
            raise PayloadError([f"device: {ref.value!r} matches no device, so no owner is known; name the user to check"])
        local = parse_dsregcmd(request.dsregcmd) if request.dsregcmd else None
        return choose_device(found, local), len(found)

    async def _disable_undone(self, device: Device) -> dict[str, Any] | None:
        """The disable a ticket's reenable undoes: the run named by the device's own tag (None: not ours)."""
        attributes = device.extension_attributes
        tag = tags.parse(attributes.get(self.config.policy.tag.attribute) if attributes else None)
        return None if tag is None else await decision_undone(self.audit, device.id, tag.run_id, "disable")

    async def _resolve_deleted(self, request: TicketRequest, now: datetime) -> tuple[Device, dict[str, Any]]:
        """A restore's device: entra-janitor's own delete of it (the intent's snapshot), else the deleted item itself.

        A deleted device cannot be found by name in the tenant, so the audit log is asked first (name, object id
        or deviceId); a device deleted by someone else is found in deleted items by its object id.
        """
        ref = request.device.value
        intents = await deleted_by_us(self.audit, ref, now - RESTORE_LOOKBACK)
        objects = {r.entry.device_object_id for r in intents}
        if len(objects) > 1:
            raise PayloadError([f"device: {ref!r} names {len(objects)} devices entra-janitor deleted; name it by object id"])
        if intents:
            intent = intents[0]
            data = intent.entry.data
            snapshot = data.get("snapshot")
            held: Mapping[str, Any] = snapshot if is_dict(snapshot) else {}
            device = _as_device(held.get("device")) or _as_device(data.get("before"))
            if device is not None:
                undone = await decision_undone(self.audit, device.id, intent.entry.run_id or "", "delete")
                return device, {**undone, "groups": held.get("groups") or [], "owners": held.get("owners") or []}
        deleted = await self.graph.deleted_device(ref) if is_guid(ref) else None
        if deleted is None:
            raise PayloadError([
                f"device: {ref!r} is neither a device entra-janitor deleted in the last {RESTORE_WINDOW_DAYS} days nor, "
                "by object id, a device in deleted items; restore needs one of them"
            ])  # fmt: skip
        return deleted.device, {"run_id": None, "command_id": None, "record_id": None, "action": "delete"}

    def _command(
        self,
        request: TicketRequest,
        rid: str,
        device: Device | None,
        matches: int,
        now: datetime,
        undo: Mapping[str, Any] | None = None,
    ) -> RemediationCommand:
        evidence: dict[str, Any] = {"device_ref": request.device.value, "resolved": device is not None, "matches": matches}
        if undo is not None:
            evidence["undo"] = dict(undo)
        return RemediationCommand(
            command_id=rid,
            run_id=f"tickets-{now:%Y-%m-%d}",  # one run per day: the per-run budget caps ticket-driven writes too
            trigger="ticket",
            device_object_id=device.id if device else NO_OBJECT_ID,
            device_id=device.device_id if device else (request.device.value if request.device.by == "deviceId" else None),
            display_name=device.display_name if device else request.device.value,
            device_class="ticket",
            proposed_action=request.action,  # type: ignore[arg-type]
            evidence=evidence,
            snapshot=device,
            policy_hash=policy_hash(self.config.policy),
            created_at=now,
            ticket=TicketRef(
                source=request.source,
                ticket_id=request.ticket_id,
                requested_by=request.requested_by,
                callback_url=request.callback_url,
                request_id=rid,
                dsregcmd=request.dsregcmd,
                user=request.user,
            ),
        )

    @staticmethod
    def _record(
        request: TicketRequest, command: RemediationCommand, phase: str, matches: int, error: str | None = None
    ) -> AuditEntry:
        data: dict[str, Any] = {
            "phase": phase,
            "request_id": command.command_id,
            "source": request.source,
            "ticket_id": request.ticket_id,
            "requested_by": request.requested_by,
            "user": request.user,
            "device_ref": request.device.value,
            "resolved": command.device_object_id != NO_OBJECT_ID,
            "matches": matches,
            "callback_url": request.callback_url,
            "dsregcmd_chars": len(request.dsregcmd) if request.dsregcmd else 0,
        }
        if error:
            data["error"] = error
        return AuditEntry(
            kind="ticket",
            run_id=command.run_id,
            command_id=command.command_id,
            ticket=request.ticket_id,
            device_object_id=command.device_object_id,
            device_id=command.device_id,
            display_name=command.display_name,
            action=request.action,
            actor=request.requested_by,
            reason=f"{request.source} ticket {request.ticket_id}: {request.action} requested"
            + ("" if phase == "intake" else f" ({phase})"),
            data=data,
        )
