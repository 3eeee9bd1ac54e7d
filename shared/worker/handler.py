"""The command handler: one queue message in, gates walked, an audited action out, one terminal decision.

Flow for a valid command: take the command's lease (one delivery at a time, see lease.py), look for
earlier progress in the audit log (a redelivery completes without acting twice), re-read the device, run
the gates, reserve budget, record an intent, write through Graph, record the outcome, record the decision.
The audit store being down stops everything before any Graph write (TransientError: the message is
retried). Invalid messages are recorded and dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from shared import commands, telemetry
from shared.commands import RemediationCommand
from shared.errors import AuditUnavailable, GraphError, GraphPermissionError, InvalidCommand, PermanentError, TransientError
from shared.graph.failures import is_non_windows_refusal
from shared.models import Device
from shared.notify import Notice, recipients, render_notice, send_digests, send_notice
from shared.policy import Policy
from shared.ports import AuditEntry, AuditLog, AuditQuery, AuditRecord, GraphPort, GraphResult, Owner
from shared.tags import Tag
from shared.worker import records
from shared.worker.actions import DEVICE_WRITES, MAILS, READ_ONLY, planned_action
from shared.worker.batching import AuditWriter, DeviceWriter
from shared.worker.budget import BudgetStore, MemoryBudget
from shared.worker.gates import INTUNE_BLOCKS, Evaluation, GateContext, Reservation, evaluate, finish, needs_budget
from shared.worker.lease import CommandBusy, CommandLease
from shared.worker.records import Prior

#: How far back the worker looks for an invalid message's earlier failure record (redeliveries come within days).
INVALID_LOOKBACK = timedelta(days=14)
#: How far back a delete of a re-synced pending object is remembered ("re-created by sync: fix on-prem").
RECREATED_LOOKBACK = timedelta(days=400)

log = logging.getLogger(__name__)

#: Device writes that send no mail: clear_tag only removes our own marker from a device in use.
SILENT_WRITES = frozenset({"clear_tag"})

PROTECTED_IDS_TTL = 300.0  # seconds a protected-group membership read is reused
LEASE_POLL_SECONDS = 0.25  # how often a delivery waiting for a command's lease asks again
LEASE_WAIT_TTLS = 10  # a delivery waits at most this many lease lifetimes, then the message is retried later


@dataclass(frozen=True, slots=True)
class Handled:
    """How to settle the message, and the terminal decision recorded for it."""

    settle: str  # complete | dead_letter
    decision: str | None
    action: str | None = None
    reason: str = ""
    redelivered: bool = False  # the decision was already recorded by an earlier delivery
    dead_letter_reason: str | None = None
    writes: int = 0  # Graph device writes made for this command


@dataclass(slots=True)
class WorkerStats:
    decisions: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    device_writes: int = 0
    mails: int = 0
    redelivered: int = 0
    dead_lettered: int = 0


class Worker:
    """Handles RemediationCommands against a Graph port, an audit log and a budget store."""

    def __init__(
        self,
        graph: GraphPort,
        audit: AuditLog,
        budget: BudgetStore,
        policy: Policy,
        *,
        mail_sender: str | None = None,
        kill_switch: bool | Callable[[], bool] = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_deliveries: int = 10,
        device_writer: DeviceWriter | None = None,
        digest: bool | None = None,
        lease: CommandLease | None = None,
    ) -> None:
        self.graph = graph
        self.audit = audit
        self.policy = policy
        self.durable_budget = budget
        # report mode never spends the real budget: a dry run counts in memory what it would have used
        self.budget: BudgetStore = budget if policy.mode == "enforce" else MemoryBudget()
        self.mail_sender = mail_sender
        self._kill_switch = kill_switch
        self.clock = clock
        self.max_deliveries = max_deliveries
        self.audit_writer = AuditWriter(audit)
        self.writer = device_writer or DeviceWriter(graph)
        self.stats = WorkerStats()
        # digests need someone to call flush_digests() after a drain; the Functions host sends per device
        self.digest = policy.notify.digest if digest is None else digest
        self._protected: tuple[float, frozenset[str]] | None = None
        self._protected_refresh = asyncio.Lock()
        self._digest: dict[str, list[Notice]] = {}
        self.lease = lease
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}  # command id -> (lock, deliveries using it)
        self._lease_lost: set[str] = set()

    # ------------------------------------------------------------------ entry point

    async def handle(self, body: bytes | str, *, message_id: str, delivery_count: int = 1) -> Handled:
        """Handle one message. Raises TransientError when it should be retried (abandon it)."""
        raw = body.encode() if isinstance(body, str) else body
        try:
            command = commands.decode(raw)
        except InvalidCommand as exc:
            return await self._invalid(raw, message_id, delivery_count, str(exc))
        ticket_id = command.ticket.ticket_id if command.ticket else None
        with telemetry.context(run_id=command.run_id, command_id=command.command_id, ticket_id=ticket_id):
            handled = await self._handle_exclusively(command, delivery_count)
        self._count(handled)
        return handled

    async def _handle_exclusively(self, command: RemediationCommand, delivery_count: int) -> Handled:
        async with self._exclusive(command.command_id):  # CommandBusy when another delivery keeps it too long
            try:
                handled = await self._handle(command)
            except AuditUnavailable:
                raise  # nothing can be recorded, so nothing may be written: retry later
            except TransientError as exc:
                if delivery_count < self.max_deliveries:
                    raise
                handled = await self._decide(
                    command,
                    "failed",
                    command.proposed_action,
                    f"gave up after {delivery_count} deliveries: {exc}",
                    settle="dead_letter",
                )
            except PermanentError as exc:
                handled = await self._decide(command, "failed", command.proposed_action, str(exc), settle="dead_letter")
        return handled

    # ------------------------------------------------------------------ one delivery per command at a time

    @contextlib.asynccontextmanager
    async def _exclusive(self, command_id: str) -> AsyncIterator[None]:
        """Deliveries of one command in this process take turns; across processes the lease decides."""
        lock, users = self._local.get(command_id, (asyncio.Lock(), 0))
        self._local[command_id] = (lock, users + 1)
        try:
            async with lock:
                if self.lease is None:
                    yield
                else:
                    async with self._leased(self.lease, command_id):
                        yield
        finally:
            lock, users = self._local[command_id]
            if users <= 1:
                del self._local[command_id]
            else:
                self._local[command_id] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def _leased(self, lease: CommandLease, command_id: str) -> AsyncIterator[None]:
        holder = uuid.uuid4().hex
        deadline = time.monotonic() + LEASE_WAIT_TTLS * lease.ttl
        while not await lease.acquire(command_id, holder):
            if time.monotonic() > deadline:
                raise CommandBusy(f"command {command_id} is being handled by another worker; it will be retried")
            await asyncio.sleep(LEASE_POLL_SECONDS)
        beat = asyncio.create_task(self._keep_lease(lease, command_id, holder))
        try:
            yield
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._lease_lost.discard(command_id)
            try:
                await lease.release(command_id, holder)
            except TransientError as exc:  # it expires on its own
                log.warning("could not release the lease of command %s: %s", command_id, exc)

    async def _keep_lease(self, lease: CommandLease, command_id: str, holder: str) -> None:
        """Renew until cancelled; a renewal that fails means another delivery may hold it: no write after that."""
        while True:
            await asyncio.sleep(lease.ttl / 3)
            try:
                kept = await lease.renew(command_id, holder)
            except TransientError as exc:
                log.warning("could not renew the lease of command %s: %s", command_id, exc)
                kept = False
            if not kept:
                self._lease_lost.add(command_id)
                return

    def _check_lease(self, command: RemediationCommand) -> None:
        if command.command_id in self._lease_lost:
            raise TransientError(f"lost the lease of command {command.command_id} before writing; it will be retried")

    def _count(self, handled: Handled) -> None:
        s = self.stats
        if handled.redelivered:
            s.redelivered += 1
            return
        if handled.decision:
            s.decisions[handled.decision] = s.decisions.get(handled.decision, 0) + 1
            telemetry.count("decisions", decision=handled.decision, action=handled.action or "none")
        if handled.decision == "acted" and handled.action:
            s.actions[handled.action] = s.actions.get(handled.action, 0) + 1
        if handled.settle == "dead_letter":
            s.dead_lettered += 1
        s.device_writes += handled.writes

    async def _invalid(self, body: bytes, message_id: str, delivery_count: int, problem: str) -> Handled:
        cid = records.invalid_command_id(message_id)
        if not await self._records(cid, since=datetime.now(UTC) - INVALID_LOOKBACK):
            await self.audit_writer.append(records.invalid_entry(message_id, delivery_count, problem, body))
        self.stats.dead_lettered += 1
        self.stats.decisions["failed"] = self.stats.decisions.get("failed", 0) + 1
        telemetry.count("decisions", decision="failed", action="none")
        return Handled("dead_letter", "failed", "none", problem, dead_letter_reason="InvalidCommand")

    async def _records(self, command_id: str, *, since: datetime) -> list[AuditRecord]:
        """A command's records. `since` bounds the days read: on Table Storage only those partitions are queried."""
        return [r async for r in self.audit.iter_records(AuditQuery(command_id=command_id, since=since))]

    # ------------------------------------------------------------------ the command

    async def _handle(self, command: RemediationCommand) -> Handled:
        # Records are stamped by the audit store's clock; the command's own time may be simulated (demo, tests).
        since = min(command.created_at, datetime.now(UTC)) - timedelta(days=1)
        prior = Prior.of(await self._records(command.command_id, since=since))
        if prior.decision is not None:
            entry = prior.decision.entry
            settle = "dead_letter" if entry.decision == "failed" else "complete"
            return Handled(settle, entry.decision, entry.action, entry.reason or "", redelivered=True,
                           dead_letter_reason="RemediationFailed" if settle == "dead_letter" else None)
        if prior.outcome is not None:
            return await self._decide_from_outcome(command, prior.outcome)
        now = self.clock()
        action, why = planned_action(command, self.policy)
        current = await self._read_device(command, action)
        if prior.intent is not None:
            reconciled = await self._reconcile(command, prior.intent, current, now)
            if reconciled is not None:
                return reconciled
        ctx = await self._context(command, action, current, now)
        evaluation = evaluate(ctx)
        plan_gate = {"name": "plan", "passed": True, "reason": why}
        if evaluation.stop is not None:
            return await self._stopped(command, evaluation, plan_gate, current, now)
        reservation = await self._reserve(command, evaluation.action, now)
        evaluation = finish(evaluation, reservation, self.policy)
        if evaluation.stop is not None:
            return await self._stopped(command, evaluation, plan_gate, current, now)
        return await self._act(command, evaluation, plan_gate, current, now)

    async def _read_device(self, command: RemediationCommand, action: str) -> Device | None:
        try:
            return await self.graph.get_device(command.device_object_id)
        except GraphPermissionError as exc:
            raise PermanentError(str(exc)) from exc
        except GraphError as exc:
            raise TransientError(f"could not re-read device {command.device_object_id}: {exc}") from exc

    def kill_switch(self) -> bool:
        return self._kill_switch() if callable(self._kill_switch) else bool(self._kill_switch)

    async def _context(self, command: RemediationCommand, action: str, current: Device | None, now: datetime) -> GateContext:
        keys: tuple[str, ...] | None = None
        laps: bool | None = None
        intune: datetime | None = None
        recreated: Mapping[str, Any] | None = None
        device_id = current.device_id if current is not None else None
        try:
            protected_ids = await self._protected_ids()
            # the gates only narrow, so the planned action bounds which facts can matter
            if action in INTUNE_BLOCKS and device_id:
                intune = await self.graph.managed_device_last_sync(device_id)
            if action == "delete" and current is not None:
                keys = tuple(await self.graph.bitlocker_key_ids(device_id)) if device_id else ()
                laps = await self.graph.laps_credential_present(device_id) if device_id else False
                if command.device_class == "pending":
                    recreated = await self._recreated_from(current)
        except GraphPermissionError as exc:
            raise PermanentError(str(exc)) from exc
        except GraphError as exc:
            raise TransientError(f"could not read the facts the gates need: {exc}") from exc
        return GateContext(
            command=command,
            action=action,
            policy=self.policy,
            now=now,
            kill_switch=self.kill_switch(),
            current=current,
            protected_ids=protected_ids,
            bitlocker_key_ids=keys,
            laps_credential=laps,
            intune_last_sync=intune,
            recreated_from=recreated,
        )

    async def _protected_ids(self) -> frozenset[str]:
        groups = self.policy.protect.groups
        if not groups:
            return frozenset()
        if self._protected is not None and time.monotonic() - self._protected[0] <= PROTECTED_IDS_TTL:
            return self._protected[1]
        async with self._protected_refresh:  # one read serves every command waiting for it (no stampede)
            stamp = time.monotonic()
            if self._protected is None or stamp - self._protected[0] > PROTECTED_IDS_TTL:
                ids: set[str] = set()
                for group in groups:
                    ids |= await self.graph.group_device_ids(group)
                self._protected = (stamp, frozenset(ids))
            return self._protected[1]

    async def _recreated_from(self, current: Device) -> Mapping[str, Any] | None:
        """Our earlier delete of a device with the same onPremisesSecurityIdentifier (a pending object re-synced)."""
        sid = current.on_premises_security_identifier
        if not sid or not current.display_name:
            return None
        since = datetime.now(UTC) - RECREATED_LOOKBACK
        query = AuditQuery(device=current.display_name, kind="outcome", action="delete", since=since)
        async for record in self.audit.iter_records(query):
            before = record.entry.data.get("before") or {}
            if (
                before.get("onPremisesSecurityIdentifier") == sid
                and record.entry.device_object_id != current.id
                and record.entry.data.get("done")
            ):
                return {
                    "at": record.at.strftime("%Y-%m-%d"),
                    "object_id": record.entry.device_object_id,
                    "record": record.record_id,
                }
        return None

    async def _reserve(self, command: RemediationCommand, action: str, now: datetime) -> Reservation | None:
        if not needs_budget(action):
            return None
        limits = self.policy.limits
        return await self.budget.reserve(
            command_id=command.command_id,
            run_id=command.run_id,
            now=now,
            per_run=limits.max_destructive_per_run,
            per_day=limits.max_destructive_per_day,
        )

    # ------------------------------------------------------------------ stops and decisions

    async def _stopped(
        self,
        command: RemediationCommand,
        evaluation: Evaluation,
        plan_gate: Mapping[str, Any],
        current: Device | None,
        now: datetime,
    ) -> Handled:
        stop = evaluation.stop
        assert stop is not None
        data: dict[str, Any] = {"current": records.snapshot(current), "final_action": evaluation.action}
        if stop.stop == "dry_run":
            data["planned"] = self._planned_calls(command, evaluation.action, current, now)
            notice = await self._notice(command, evaluation, current, now, dry_run=True)
            if notice is not None:
                data["notice"] = {"to": notice.to, "subject": notice.subject, "headline": notice.headline}
        return await self._decide(
            command, stop.stop or "blocked", evaluation.action, stop.reason, gates=[plan_gate, *evaluation.records()], data=data
        )

    async def _decide(
        self,
        command: RemediationCommand,
        decision: str,
        action: str,
        reason: str,
        *,
        gates: Sequence[Mapping[str, Any]] = (),
        data: Mapping[str, Any] | None = None,
        settle: str = "complete",
        extra: Sequence[AuditEntry] = (),
        writes: int = 0,
    ) -> Handled:
        entries = [*extra, records.decision_entry(command, decision, action, reason, gates=gates, data=data)]
        if command.trigger == "ticket":
            from shared.tickets.status import result_reference  # the decision holds the diagnosis: stored once

            entries.append(records.ticket_entry(command, decision, action, reason, result_reference(data)))
        await self.audit_writer.append(*entries)
        return Handled(
            settle,
            decision,
            action,
            reason,
            dead_letter_reason="RemediationFailed" if settle == "dead_letter" else None,
            writes=writes,
        )

    async def _decide_from_outcome(self, command: RemediationCommand, outcome: AuditRecord) -> Handled:
        """Crash after the outcome, before the decision: the decision follows from the outcome (no new write)."""
        data = outcome.entry.data
        decision = data.get("decision", "acted")
        return await self._decide(
            command,
            decision,
            outcome.entry.action or command.proposed_action,
            f"{outcome.entry.reason} (outcome recorded by an earlier delivery)",
            data={"outcome_record": outcome.record_id, "redelivered": True},
            settle="dead_letter" if decision == "failed" else "complete",
        )

    async def _reconcile(
        self, command: RemediationCommand, intent: AuditRecord, current: Device | None, now: datetime
    ) -> Handled | None:
        """An intent without an outcome: a crash (or lost answer) between the write and its record.

        If the intended change is already there, record the outcome and finish without writing again; if it
        is not, return None and the command is gated and attempted afresh. Mail is never re-sent.
        """
        action = intent.entry.action or ""
        planned = intent.entry.data.get("planned") or []
        done = False
        if action == "delete":
            done = current is None
        elif action == "clear_tag":
            done = current is not None and _tag_of(current, self.policy.tag.attribute) is None
        elif action in ("disable", "tag"):
            tag = _tag_of(current, self.policy.tag.attribute)
            done = (
                tag is not None
                and tag.run_id == command.run_id
                and (action == "tag" or (current is not None and current.account_enabled is False))
            )
        elif action in MAILS:
            done = True  # at most once: a message that may have gone out is not sent again
        if not done:
            return None
        reason = "already applied before a restart: reconciled without writing again"
        outcome = records.outcome_entry(
            command,
            action,
            reason,
            {
                "status": None,
                "request_id": None,
                "reconciled": True,
                "done": True,
                "decision": "acted",
                "before": intent.entry.data.get("before"),
                "after": records.snapshot(current),
                "planned": planned,
            },
        )
        return await self._decide(
            command,
            "acted",
            action,
            reason,
            gates=intent.entry.data.get("gates") or [],
            data={"reconciled": True, "intent_record": intent.record_id},
            extra=[outcome],
        )

    # ------------------------------------------------------------------ acting

    def _tag_value(self, command: RemediationCommand, action: str, now: datetime) -> str:
        return Tag("disabled" if action == "disable" else "tagged", now, command.device_class, command.run_id).render()

    def _patch(self, command: RemediationCommand, action: str, now: datetime) -> dict[str, Any]:
        attribute = f"extensionAttribute{self.policy.tag.attribute}"
        value = None if action == "clear_tag" else self._tag_value(command, action, now)
        body: dict[str, Any] = {"extensionAttributes": {attribute: value}}
        if action == "disable":
            body = {"accountEnabled": False, **body}
        return body

    def _planned_calls(
        self, command: RemediationCommand, action: str, current: Device | None, now: datetime
    ) -> list[dict[str, Any]]:
        oid = command.device_object_id
        calls: list[dict[str, Any]] = []
        if action in ("disable", "tag", "clear_tag"):
            calls.append({"method": "PATCH", "url": f"/devices/{oid}", "body": self._patch(command, action, now)})
        elif action == "delete":
            calls.append({"method": "DELETE", "url": f"/devices/{oid}"})
        if action in MAILS or (action in DEVICE_WRITES and action not in SILENT_WRITES):
            calls.append(
                {
                    "method": "POST",
                    "url": f"/users/{self.mail_sender or '<MAIL_SENDER>'}/sendMail",
                    "digest": self.digest,
                }
            )
        return calls

    async def _notice(
        self, command: RemediationCommand, evaluation: Evaluation, current: Device | None, now: datetime, *, dry_run: bool = False
    ) -> Notice | None:
        action = evaluation.action
        if action in READ_ONLY or action in SILENT_WRITES:
            return None
        owners: list[Owner] = []
        if self.policy.notify.owners and current is not None:
            try:
                owners = await self.graph.registered_owners(current.id)
            except GraphPermissionError as exc:
                raise PermanentError(str(exc)) from exc
            except GraphError as exc:
                raise TransientError(f"could not read the device's owners: {exc}") from exc
        to = recipients(owners, self.policy.notify.admins, include_owners=self.policy.notify.owners)
        if not to:
            return None
        last = evaluation.results[-1] if evaluation.results else None
        reasons = [r.reason for r in evaluation.results if r.narrow_to] or [last.reason if last else ""]
        return render_notice(
            to=to,
            action=action,
            device_class=command.device_class,
            display_name=(current.display_name if current else None) or command.display_name,
            object_id=command.device_object_id,
            reason="; ".join(reasons),
            evidence=command.evidence,
            tag_attribute=self.policy.tag.attribute,
            now=now,
            dry_run=dry_run,
        )

    async def _act(
        self,
        command: RemediationCommand,
        evaluation: Evaluation,
        plan_gate: Mapping[str, Any],
        current: Device | None,
        now: datetime,
    ) -> Handled:
        action = evaluation.action
        gates = [plan_gate, *evaluation.records()]
        if action in READ_ONLY:
            return await self._read_only(command, action, gates, current, now)
        notice = await self._notice(command, evaluation, current, now)
        if action in MAILS and notice is None:
            return await self._decide(
                command,
                "skipped",
                action,
                "no recipients: no registered owner with mail and notify.admins is empty",
                gates=gates,
                data={"current": records.snapshot(current)},
            )
        if action in MAILS and not self.mail_sender:
            return await self._decide(
                command,
                "skipped",
                action,
                "MAIL_SENDER is not set: nothing can be sent",
                gates=gates,
                data={"current": records.snapshot(current)},
            )
        planned = self._planned_calls(command, action, current, now)
        await self.audit_writer.append(records.intent_entry(command, action, gates, planned, current))
        self._check_lease(command)

        result: GraphResult | None = None
        after: Device | None = current
        writes = 0
        if action in DEVICE_WRITES:
            if action == "delete":
                result = await self.writer.delete(command.device_object_id)
                after = None
            else:
                body = self._patch(command, action, now)
                result = await self.writer.patch(command.device_object_id, body)
                after = _applied(current, body) if current is not None else None
            writes = 1
            if result.status in (0, 429) or result.status >= 500:
                raise TransientError(
                    f"Graph write for {command.device_object_id} did not go through: {result.error_message or result.status}"
                )
        decision, reason, settle = "acted", _acted_reason(action, evaluation), "complete"
        if result is not None and result.status >= 400 and not (action == "delete" and result.status == 404):
            if result.status == 404:
                decision, reason = "skipped", "state changed: the device was deleted before the write"
            else:
                decision, settle = "failed", "dead_letter"
                reason = _refusal(action, result)
        elif action == "delete" and result is not None and result.status == 404:
            reason = "the device was already gone (404): done"
        mail: dict[str, Any] | None = None
        if notice is not None and decision == "acted":
            mail = await self._deliver(command, notice)
            if action in MAILS and mail.get("status", 202) >= 400:
                decision, settle = "failed", "dead_letter"
                reason = f"sendMail failed: {mail.get('error')}"
        done = decision == "acted"
        outcome = records.outcome_entry(
            command,
            action,
            reason,
            {
                "status": result.status if result else None,
                "request_id": result.request_id if result else None,
                "error": result.error_message if result else None,
                "before": records.snapshot(current),
                "after": records.snapshot(after) if action != "delete" else None,
                "mail": mail,
                "done": done,
                "decision": decision,
            },
        )
        self.stats.mails += 1 if mail and mail.get("sent") else 0
        return await self._decide(
            command,
            decision,
            action,
            reason,
            gates=gates,
            data={"request_id": result.request_id if result else None},
            extra=[outcome],
            settle=settle,
            writes=writes,
        )

    async def _deliver(self, command: RemediationCommand, notice: Notice) -> dict[str, Any]:
        """Send now, or hold for the run's digest."""
        info: dict[str, Any] = {"to": notice.to, "subject": notice.subject}
        if not self.mail_sender:
            return {**info, "sent": False, "why": "MAIL_SENDER is not set"}
        if self.digest:
            self._digest.setdefault(command.run_id, []).append(notice)
            return {
                **info,
                "sent": False,
                "digest": True,
                "headline": notice.headline,
                "why_text": notice.why,
                "undo": notice.undo,
            }
        try:
            result = await send_notice(self.graph, self.mail_sender, notice)
        except GraphError as exc:
            return {**info, "sent": False, "status": exc.status or 0, "error": str(exc)}
        return {
            **info,
            "sent": result.status < 400,
            "status": result.status,
            "request_id": result.request_id,
            "error": result.error_message,
        }

    async def _read_only(
        self, command: RemediationCommand, action: str, gates: list[Mapping[str, Any]], current: Device | None, now: datetime
    ) -> Handled:
        if action == "scope_check":
            from shared.scope import check_join_scope

            user = (command.ticket.user if command.ticket else None) or await self._first_owner(current)
            if user is None:
                return await self._decide(
                    command,
                    "skipped",
                    action,
                    "no user to check: the ticket names none and the device has no registered owner",
                    gates=gates,
                )
            try:
                scope = await check_join_scope(self.graph, user)
            except GraphError as exc:
                raise TransientError(f"join-scope check failed: {exc}") from exc
            verdict = "allowed" if scope.allowed else "not allowed"
            return await self._decide(
                command,
                "acted",
                action,
                f"Entra join {verdict} for {user}: " + "; ".join(scope.reasons),
                gates=gates,
                data={"scope": scope.to_builtins()},
            )
        if action == "diagnose":
            from shared.diagnosis import diagnose_device
            from shared.tickets.intake import ticket_device_ref

            ticket = command.ticket
            try:
                diagnosis = await diagnose_device(
                    self.graph,
                    ticket_device_ref(command),
                    dsregcmd_text=ticket.dsregcmd if ticket else None,
                    user=ticket.user if ticket else None,
                    policy=self.policy,
                    now=now,
                )
            except GraphError as exc:
                raise TransientError(f"diagnosis failed: {exc}") from exc
            data = msgspec.to_builtins(diagnosis)
            stage = data.get("stage") if isinstance(data, dict) else None
            return await self._decide(
                command, "acted", action, f"diagnosed: stage {stage}", gates=gates, data={"diagnosis": data}
            )
        return await self._decide(command, "skipped", action, "report only", gates=gates)

    async def _first_owner(self, current: Device | None) -> str | None:
        if current is None:
            return None
        owners = await self.graph.registered_owners(current.id)
        return owners[0].id if owners else None

    # ------------------------------------------------------------------ digests

    async def flush_digests(self) -> int:
        """Send the held digests (one per recipient per run); returns how many messages went out."""
        sent = 0
        pending, self._digest = self._digest, {}
        for run_id, notices in pending.items():
            if not self.mail_sender or not notices:
                continue
            results = await send_digests(self.graph, self.mail_sender, run_id, notices, self.clock())
            entries = [
                AuditEntry(
                    kind="notice",
                    run_id=run_id,
                    action="notify",
                    reason="digest sent",
                    data={"to": to, "status": r.status, "request_id": r.request_id, "devices": len(notices)},
                )
                for to, r in results
            ]
            await self.audit_writer.append(*entries)
            sent += sum(1 for _, r in results if r.status < 400)
        self.stats.mails += sent
        return sent


def _tag_of(device: Device | None, attribute: int) -> Tag | None:
    from shared.tags import parse

    if device is None or device.extension_attributes is None:
        return None
    return parse(device.extension_attributes.get(attribute))


def _applied(device: Device, patch: Mapping[str, Any]) -> Device:
    """The device as it is after a successful PATCH (no extra read needed)."""
    data = msgspec.to_builtins(device)
    for key, value in patch.items():
        if key == "extensionAttributes":
            data["extensionAttributes"] = {**(data.get("extensionAttributes") or {}), **value}
        else:
            data[key] = value
    return msgspec.convert(data, Device)


def _refusal(action: str, result: GraphResult) -> str:
    """Why a write failed for good; the gateway's message says what can help (never a permission that would not).

    Source: Microsoft Graph answers an application's accountEnabled PATCH on a non-Windows device with
    400 Request_BadRequest, "Properties other than ExtendedAttribute1..15 can be modified only on windows
    devices" (microsoft-graph-docs issues 15707 and 16641): no permission or role changes that.
    """
    said = result.error_message or result.error_code or str(result.status)
    if is_non_windows_refusal(result.status, result.error_code, result.error_message):
        return f"Graph refused the {action} for good (400 {result.error_code}; no permission or role changes this): {said}"
    return f"Graph refused the {action}: {said}"


def _acted_reason(action: str, evaluation: Evaluation) -> str:
    narrowed = [r.reason for r in evaluation.results if r.narrow_to]
    base = {
        "disable": "disabled and tagged",
        "tag": "tagged",
        "clear_tag": "tag cleared",
        "delete": "deleted",
        "notify": "notified",
        "notify_onprem": "on-prem owners notified",
    }.get(action, action)
    return base + (f" ({'; '.join(narrowed)})" if narrowed else "")
