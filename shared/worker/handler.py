"""The worker's shell: one queue message in, one terminal decision out; all deciding is in core.py.

For a valid command: take the command's lease (one delivery at a time, see lease.py), look for earlier
progress in the audit log (a redelivery completes without acting twice), re-read the device, read only
the facts the gates active for the planned action declare they need (gates.facts_needed), decide, reserve
budget for a device write, admit, record an intent, write through Graph, interpret the answers, record the
outcome and the decision. Errors are classified once (shared/errors.py, by the Graph gateway for Graph):
transient ones give the message back for a later delivery and permanent ones are `failed` at once; on the
last delivery every error ends in one `failed` decision. The audit store being down stops everything
before any Graph write (AuditUnavailable: the message is retried). Invalid messages are recorded and
dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from shared import commands, telemetry
from shared.actions import Action, Kind
from shared.commands import RemediationCommand
from shared.errors import AuditUnavailable, GraphError, InvalidCommand, TransientError
from shared.keep.links import KeepLinks
from shared.keep.records import kept_devices
from shared.models import Device
from shared.notify import Notice, send_digests, send_notice
from shared.notify.messages import KeepOffer
from shared.policy import Policy
from shared.ports import AuditEntry, AuditLog, AuditQuery, AuditRecord, GraphPort, GraphResult, Owner
from shared.worker import core, records
from shared.worker.actions import planned_action
from shared.worker.batching import AuditWriter, DeviceWriter
from shared.worker.budget import BudgetStore, MemoryBudget
from shared.worker.cache import TimedValue
from shared.worker.core import Act, Facts, Outcome, Results, Stop
from shared.worker.gates import Reservation, facts_needed
from shared.worker.lease import CommandBusy, CommandLease
from shared.worker.records import Prior

#: How far back the worker looks for an invalid message's earlier failure record (redeliveries come within days).
INVALID_LOOKBACK = timedelta(days=14)
#: How far back a delete of a re-synced pending object is remembered ("re-created by sync: fix on-prem").
RECREATED_LOOKBACK = timedelta(days=400)

log = logging.getLogger(__name__)

PROTECTED_IDS_TTL = 300.0  # seconds a protected-group membership (and the keeps) read is reused
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
    decisions: dict[str, int] = field(default_factory=dict[str, int])
    actions: dict[str, int] = field(default_factory=dict[str, int])
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
        keep_links: KeepLinks | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timer: Callable[[], float] = time.monotonic,
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
        self._digest: dict[str, list[Notice]] = {}
        self.lease = lease
        self.keep_links = keep_links  # the owners' keep links in notices (None: no link)
        self._sleep, self._timer = sleep, timer  # lease waits and renewals, protected-ids age (tests: virtual time)
        self._protected = TimedValue[frozenset[str]](PROTECTED_IDS_TTL, timer)
        self._kept = TimedValue[dict[str, datetime]](PROTECTED_IDS_TTL, timer)
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}  # command id -> (lock, deliveries using it)
        self._lease_lost: set[str] = set()

    # ------------------------------------------------------------------ entry point

    async def handle(self, body: bytes | str, *, message_id: str, delivery_count: int = 1) -> Handled:
        """Handle one message. Raises a TransientError (or an unexpected error) when it should be retried."""
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
        """The one place an error becomes a retry or a terminal decision (core.give_up decides which)."""
        async with self._exclusive(command.command_id):  # CommandBusy when another delivery keeps it too long
            try:
                return await self._handle(command)
            except (AuditUnavailable, CommandBusy):
                raise  # nothing can be recorded, or another delivery holds the command and decides: retry later
            except Exception as exc:
                failed = core.give_up(command, exc, delivery_count, self.max_deliveries)
                if failed is None:
                    raise
                log.warning("command %s failed: %s", command.command_id, failed.reason)
                return await self._record(command, failed)

    # ------------------------------------------------------------------ one delivery per command at a time

    @contextlib.asynccontextmanager
    async def _exclusive(self, command_id: str) -> AsyncGenerator[None]:
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
    async def _leased(self, lease: CommandLease, command_id: str) -> AsyncGenerator[None]:
        holder = uuid.uuid4().hex
        deadline = self._timer() + LEASE_WAIT_TTLS * lease.ttl
        while not await lease.acquire(command_id, holder):
            if self._timer() > deadline:
                raise CommandBusy(f"command {command_id} is being handled by another worker; it will be retried")
            await self._sleep(LEASE_POLL_SECONDS)
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
            await self._sleep(lease.ttl / 3)
            try:
                kept = await lease.renew(command_id, holder)
            except TransientError as exc:
                log.warning("could not renew the lease of command %s: %s", command_id, exc)
                kept = False
            if not kept:
                self._lease_lost.add(command_id)
                return

    def _check_lease(self, command: RemediationCommand) -> None:
        if command.command_id in self._lease_lost:  # another delivery may hold the command now: it decides
            raise CommandBusy(f"lost the lease of command {command.command_id} before writing; it will be retried")

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

    def kill_switch(self) -> bool:
        return self._kill_switch() if callable(self._kill_switch) else bool(self._kill_switch)

    # ------------------------------------------------------------------ the command

    async def _handle(self, command: RemediationCommand) -> Handled:
        # Records are stamped by the audit store's clock; the command's own time may be simulated (demo, tests).
        since = min(command.created_at, datetime.now(UTC)) - timedelta(days=1)
        prior = Prior.of(await self._records(command.command_id, since=since))
        if prior.decision is not None:
            return _redelivered(prior.decision)
        if prior.outcome is not None:
            return await self._record(command, core.from_outcome(command, prior.outcome))
        now = self.clock()
        current = await self.graph.get_device(command.device_object_id)
        if prior.intent is not None:
            done = core.reconcile(command, prior.intent, current, self.policy)
            if done is not None:
                return await self._record(command, done)
        verdict = core.decide(await self._facts(command, current), self.policy, now)
        if isinstance(verdict, Act):
            reservation = await self._reserve(command, now) if core.needs_reservation(verdict) else None
            verdict = core.admit(verdict, reservation, self.policy)
        if isinstance(verdict, Stop):
            return await self._record(command, await self._with_preview(verdict, now))
        return await self._record(command, await self._carry_out(verdict, now))

    async def _facts(self, command: RemediationCommand, current: Device | None) -> Facts:
        """Read what the gates active for the planned action need, and nothing else (the gates only narrow)."""
        action, why = planned_action(command, self.policy)
        needed = facts_needed(action)
        device_id = current.device_id if current is not None else None
        protected = await self._protected_ids() if "group_devices" in needed else frozenset[str]()
        intune = None
        if "managed_devices" in needed and device_id:
            intune = await self.graph.managed_device_last_sync(device_id)
        keys: tuple[str, ...] | None = None
        if "bitlocker_keys" in needed and current is not None:
            keys = tuple(await self.graph.bitlocker_key_ids(device_id)) if device_id else ()
        laps: bool | None = None
        if "laps_credentials" in needed and current is not None:
            laps = await self.graph.laps_credential_present(device_id) if device_id else False
        recreated = None
        if core.gate_active(core.RECREATED_GATE, action) and command.device_class == "pending" and current is not None:
            recreated = await self._recreated_from(current)
        deleted = None
        if "get_deleted_device" in needed and current is None:
            deleted = await self.graph.deleted_device(command.device_object_id)
        kept_until = None
        if core.gate_active(core.KEPT_GATE, action) and current is not None:
            kept_until = await self._kept_until(current.id)
        return Facts(
            command=command,
            action=action,
            plan_reason=why,
            current=current,
            kill_switch=self.kill_switch(),
            protected_ids=protected,
            bitlocker_key_ids=keys,
            laps_credential=laps,
            intune_last_sync=intune,
            recreated_from=recreated,
            deleted=deleted,
            kept_until=kept_until,
            mail_sender=self.mail_sender,
            digest=self.digest,
        )

    async def _protected_ids(self) -> frozenset[str]:
        groups = self.policy.protect.groups
        if not groups:
            return frozenset()

        async def load() -> frozenset[str]:
            ids: set[str] = set()
            for group in groups:
                ids |= await self.graph.group_device_ids(group)
            return frozenset(ids)

        return await self._protected.get(load)

    async def _kept_until(self, object_id: str) -> datetime | None:
        """When the owner's keep of this device ends (None: not kept); all keeps read once per PROTECTED_IDS_TTL."""
        now = self.clock()
        kept = await self._kept.get(lambda: kept_devices(self.audit, now, self.policy.keep.days))
        return kept.get(object_id)

    async def _recreated_from(self, current: Device) -> Mapping[str, Any] | None:
        """Our earlier delete of a device with the same onPremisesSecurityIdentifier (a pending object re-synced)."""
        sid = current.on_premises_security_identifier
        if not sid or not current.display_name:
            return None
        since = datetime.now(UTC) - RECREATED_LOOKBACK
        query = AuditQuery(device=current.display_name, kind="outcome", action="delete", since=since)
        async for record in self.audit.iter_records(query):
            before: Mapping[str, Any] = record.entry.data.get("before") or {}
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

    async def _reserve(self, command: RemediationCommand, now: datetime) -> Reservation:
        limits = self.policy.limits
        return await self.budget.reserve(
            command_id=command.command_id,
            run_id=command.run_id,
            now=now,
            per_run=limits.max_destructive_per_run,
            per_day=limits.max_destructive_per_day,
        )

    # ------------------------------------------------------------------ doing it

    async def _carry_out(self, act: Act, now: datetime) -> Stop:
        """Intent, the device write, the notice; what came of it is core.interpret's to say."""
        if act.kind is Kind.READ:
            return core.interpret(act, await self._read(act, now))
        notice = await self._notice(act, now)
        held = core.hold_mail(act, notice, self.mail_sender)
        if held is not None:
            return held
        extra = await self._intent_extra(act)
        await self.audit_writer.append(
            records.intent_entry(act.command, act.action.value, act.gates, core.planned(act), act.facts.current, extra)
        )
        self._check_lease(act.command)
        write = await self._write(act)
        outcome = core.interpret(act, Results(write=write))
        if outcome.retry is not None:
            raise outcome.retry  # not done: the one place in _handle_exclusively retries or gives up
        if act.action is Action.RESTORE and outcome.decision == "acted":
            outcome = core.after_restore(outcome, act, await self.graph.device_groups(act.command.device_object_id))
        if notice is not None and outcome.decision == "acted":
            outcome = core.interpret(act, Results(write=write, mail=await self._deliver(act.command, notice)))
        return outcome

    async def _intent_extra(self, act: Act) -> dict[str, Any]:
        """A delete's snapshot (device, owners, groups: what a restore is checked against); an undo's reference."""
        extra: dict[str, Any] = {}
        current = act.facts.current
        if act.action is Action.DELETE and current is not None:
            owners = await self.graph.registered_owners(current.id)
            groups = await self.graph.device_groups(current.id)
            extra["snapshot"] = records.delete_snapshot(current, owners, groups)
        undoes = core.undo_reference(act.command)
        if undoes is not None:
            extra["undoes"] = undoes
        return extra

    async def _write(self, act: Act) -> GraphResult | None:
        """The device call the action table planned (one per device write; none for mail)."""
        if not act.calls:
            return None
        [call] = act.calls
        if call.method == "DELETE":
            return await self.writer.delete(act.command.device_object_id)
        if act.action is Action.RESTORE:
            return await self.graph.restore_deleted_device(act.command.device_object_id)
        return await self.writer.patch(act.command.device_object_id, call.body or {})

    async def _notice(self, act: Act, now: datetime, *, dry_run: bool = False) -> Notice | None:
        """The notice an action sends; the owners are read only when one is sent and the policy mails them."""
        owners: list[Owner] = []
        if core.reads_owners(act, self.policy) and act.facts.current is not None:
            owners = await self.graph.registered_owners(act.facts.current.id)
        return core.notice(act, owners, self.policy, now, dry_run=dry_run, keep=self._keep_offer(act, owners, now, dry_run))

    def _keep_offer(self, act: Act, owners: list[Owner], now: datetime, dry_run: bool) -> KeepOffer | None:
        """The owner's keep link, when links are configured (KEEP_LINK_SECRET, PUBLIC_BASE_URL) and this is no dry run."""
        owner = core.keep_owner(act, owners)
        if self.keep_links is None or owner is None or dry_run or act.facts.current is None:
            return None
        days = self.policy.keep.link_days
        link = self.keep_links.link(act.facts.current.id, owner.id, now, days)
        return KeepOffer(link, owner.mail or owner.user_principal_name or "", now + timedelta(days=days))

    async def _with_preview(self, stop: Stop, now: datetime) -> Stop:
        """A dry run records the notice it would have sent."""
        if stop.act is None or stop.decision != "dry_run":
            return stop
        notice = await self._notice(stop.act, now, dry_run=True)
        if notice is None:
            return stop
        preview = {"to": notice.to, "subject": notice.subject, "headline": notice.headline}
        return replace(stop, data={**stop.data, "notice": preview})

    async def _deliver(self, command: RemediationCommand, notice: Notice) -> dict[str, Any]:
        """Send now, or hold for the run's digest. A failed send is a result (mail is never re-sent)."""
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
            return {**info, "sent": False, "status": exc.status or 0, "error": str(exc), "class": type(exc).__name__}
        return {
            **info,
            "sent": result.status < 400,
            "status": result.status,
            "request_id": result.request_id,
            "error": result.error_message,
        }

    async def _read(self, act: Act, now: datetime) -> Results:
        """The reads a read-only action is made of (join scope, diagnosis)."""
        command, current = act.command, act.facts.current
        ticket = command.ticket
        if act.action is Action.SCOPE_CHECK:
            from shared.scope import check_join_scope

            user = (ticket.user if ticket else None) or await self._first_owner(current)
            scope = await check_join_scope(self.graph, user) if user is not None else None
            return Results(user=user, scope=scope.to_builtins() if scope is not None else None)
        if act.action is Action.DIAGNOSE:
            from shared.diagnosis import diagnose_device
            from shared.tickets.intake import ticket_device_ref

            diagnosis = await diagnose_device(
                self.graph,
                ticket_device_ref(command),
                dsregcmd_text=ticket.dsregcmd if ticket else None,
                user=ticket.user if ticket else None,
                policy=self.policy,
                now=now,
            )
            data: dict[str, Any] = msgspec.to_builtins(diagnosis)
            return Results(diagnosis=data)
        return Results()

    async def _first_owner(self, current: Device | None) -> str | None:
        if current is None:
            return None
        owners = await self.graph.registered_owners(current.id)
        return owners[0].id if owners else None

    # ------------------------------------------------------------------ recording

    async def _record(self, command: RemediationCommand, verdict: Stop) -> Handled:
        """The outcome (when something was done), the one terminal decision and, for a ticket, its result."""
        entries: list[AuditEntry] = []
        writes = 0
        if isinstance(verdict, Outcome):
            writes = verdict.writes
            if verdict.record is not None:
                entries.append(records.outcome_entry(command, verdict.action, verdict.reason, verdict.record))
            if verdict.mail and verdict.mail.get("sent"):
                self.stats.mails += 1
        undoes = core.undo_reference(command)
        data = {**verdict.data, "undoes": undoes} if undoes is not None else verdict.data
        entries.append(
            records.decision_entry(command, verdict.decision, verdict.action, verdict.reason, gates=verdict.gates,
                                   data=data)
        )
        if undoes is not None and verdict.decision == "acted":
            entries.append(records.undone_entry(command, verdict.action, verdict.reason, undoes))
        if command.trigger == "ticket":
            from shared.tickets.status import result_reference  # the decision holds the diagnosis: stored once

            entries.append(
                records.ticket_entry(command, verdict.decision, verdict.action, verdict.reason,
                                     result_reference(verdict.data))
            )
        await self.audit_writer.append(*entries)
        dead = verdict.settle == "dead_letter"
        return Handled(
            verdict.settle,
            verdict.decision,
            verdict.action,
            verdict.reason,
            dead_letter_reason="RemediationFailed" if dead else None,
            writes=writes,
        )

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


def _redelivered(decision: AuditRecord) -> Handled:
    """The decision an earlier delivery recorded: settled the same way, nothing done again."""
    entry = decision.entry
    dead = entry.decision == "failed"
    return Handled(
        "dead_letter" if dead else "complete",
        entry.decision,
        entry.action,
        entry.reason or "",
        redelivered=True,
        dead_letter_reason="RemediationFailed" if dead else None,
    )
