"""The nightly scan: stream every device, classify, hold destructive proposals behind the breaker, queue commands.

Flow (memory flat whatever the fleet size):
1. Read the protected groups' members once (a group that cannot be read stops the scan: fail closed).
2. Stream /devices page by page ($select of the fields the rules read), several deviceId partitions at once,
   checked complete against /devices/$count (see partitions.py). Rules before the duplicate rule run now;
   every row that may still need a decision goes to a partitioned disk spill (see spill.py).
3. Per spill partition: build the newest-registration index of its duplicate keys, classify the rows that can
   be candidates with the full `classify()`, propose an action, queue report-only commands at once and
   spill destructive ones again.
4. Blast-radius breaker on the run's totals: queue the destructive commands, or none of them, each then
   getting a terminal `blocked` decision in the audit log, and mail the admins.
5. The run summary goes to the audit log (kind "run") and back to the caller.
Nothing is queued before the whole fleet has been read, so a Graph failure mid-stream queues nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import settings, telemetry
from shared.classify import (
    CANDIDATE_CLASSES,
    CLASS_NAMES,
    ClassifyContext,
    DeviceClass,
    Finding,
    MappingSiblings,
    classify,
    classify_head,
    classify_tail,
    duplicate_key,
    is_device_write,
    may_be_older_duplicate,
    newest_index,
    propose_action,
    sibling_registered,
)
from shared.classify.rules import MDM_CHECK
from shared.commands import RemediationCommand, Trigger, decode, encode, message_id
from shared.errors import GraphError
from shared.keep.records import kept_devices
from shared.models import Device
from shared.policy import Policy, policy_hash
from shared.ports import AuditEntry, AuditLog, GraphPort, OutgoingMessage, QueueSender
from shared.scan.alert import breaker_mail
from shared.scan.breaker import BreakerVerdict, check_breaker
from shared.scan.packing import pack, unpack
from shared.scan.partitions import PartitionedReader, ReadPlan
from shared.scan.spill import DEFAULT_PARTITIONS, BlobStore, PartitionSpill
from shared.scan.summary import ScanSummary
from shared.worker.records import command_entry

log = logging.getLogger(__name__)

#: No server-side $filter narrows the read (partitions only split it by deviceId): healthy devices are counted,
#: and any enabled object may be the newer one of a duplicate pair, so the scan reads the whole directory.
#: $select keeps each page to what rules read.
SERVER_FILTER: str | None = None
SEND_BATCH = 2_000  # the adapters split by size; bigger batches mean fewer commits
AUDIT_BATCH = 500
YIELD_EVERY = 128  # devices classified between event-loop turns while a page is processed
HELD_FLUSH_ROWS = 1_000  # held commands carry ~1.5 KB bodies: keep their buffer small

# Spill row layout: (duplicate key, sibling registration, object id, state, class code, blob offset, blob length);
# the blob (the packed device, for rows that may need a command) lives in the BlobStore, offset -1 when none.
_SIBLING, _FINAL, _PROVISIONAL = 0, 1, 2
_CODE = {name: code for code, name in enumerate(CLASS_NAMES)}
_CANDIDATE_CODES = frozenset(_CODE[c] for c in CANDIDATE_CLASSES)
_object_id = operator.itemgetter(2)


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """Reported after every page and at each phase change (the CLI draws it)."""

    phase: str  # listing | resolving | enqueueing | done
    pages: int
    devices: int
    elapsed: float
    total: int | None = None  # devices Graph counted before the read
    partitions: int = 0  # of the read in progress
    partitions_done: int = 0
    partitions_in_flight: int = 0


ProgressCallback = Callable[[ScanProgress], None]


def new_run_id(now: datetime) -> str:
    return f"scan-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def command_message_id(now: datetime, device_id: str, device_class: str, action: str, policy_hash: str) -> str:
    """Same UTC day, device, class, action and policy -> same MessageId: a second scan that day queues nothing twice.

    The policy hash is part of it so that a changed policy (report -> enforce, a new threshold) is worked
    the same day instead of being dropped as a duplicate of the earlier run's commands.
    """
    return message_id(now.astimezone(UTC).date().isoformat(), device_id, device_class, action, policy_hash)


async def protected_device_ids(graph: GraphPort, policy: Policy) -> frozenset[str]:
    """Object ids of devices in protect.groups (transitive), read once per scan; errors propagate."""
    ids: set[str] = set()
    for group_id in policy.protect.groups:
        ids |= await graph.group_device_ids(group_id)
    return frozenset(ids)


def blocked_decision(command: RemediationCommand, verdict: BreakerVerdict) -> AuditEntry:
    """The terminal decision of a destructive candidate the breaker held back (it is never queued)."""
    reason = verdict.reason or "breaker"
    return command_entry(
        command,
        "decision",
        decision="blocked",
        action=command.proposed_action,
        reason=reason,
        data={
            "gates": [{"name": "breaker", "passed": False, "reason": reason}],
            "evidence": command.evidence,
            "device_class": command.device_class,
            "trigger": command.trigger,
            "policy_hash": command.policy_hash,
        },
    )


class _Run:
    """State of one scan run (the pieces of run_scan that share it)."""

    def __init__(
        self,
        graph: GraphPort,
        queue: QueueSender,
        audit: AuditLog,
        policy: Policy,
        now: datetime,
        trigger: Trigger,
        progress: ProgressCallback | None,
        reading: ReadPlan,
    ) -> None:
        self.graph, self.queue, self.audit, self.policy = graph, queue, audit, policy
        self.reader = PartitionedReader(graph, reading)
        self.now = now
        self.trigger: Trigger = trigger
        self.progress = progress
        self.clock = time.perf_counter()
        self._phase: tuple[str, float] | None = None
        self.summary = ScanSummary(
            run_id=new_run_id(now), trigger=trigger, started_at=now, policy_hash=policy_hash(policy), mode=policy.mode
        )
        self.outbox: list[OutgoingMessage] = []
        self.sending: asyncio.Task[int] | None = None  # one batch in flight while the next is built

    def phase(self, name: str | None) -> None:
        """Close the running phase (its seconds go to summary.timings) and start `name`."""
        now = time.perf_counter()
        if self._phase is not None:
            previous, started = self._phase
            self.summary.timings[previous] = round(now - started, 3)
        self._phase = (name, now) if name else None

    def report(self, phase: str) -> None:
        if self.progress is not None:
            s, r = self.summary, self.reader
            elapsed = time.perf_counter() - self.clock
            self.progress(
                ScanProgress(phase, s.pages, s.devices_scanned, elapsed, r.expected, r.partitions, r.done, r.in_flight)
            )

    # ----------------------------------------------------------------- 2. stream

    async def stream(self, ctx: ClassifyContext, spill: PartitionSpill, blobs: BlobStore) -> None:
        counts = self.summary.findings
        add, put = spill.add, blobs.put
        async for page in self.reader.pages(discard=lambda: self.discard(spill, blobs)):
            for index, device in enumerate(page):
                if index % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the gateway's prefetch of the next page go out meanwhile
                key = duplicate_key(device)
                registered = sibling_registered(device) if key is not None else None
                head = classify_head(device, ctx)
                if head is not None:
                    counts[head.device_class] += 1
                    if head.candidate:
                        packed = pack(device)
                        add(key, (key, registered, device.id, _FINAL, _CODE[head.device_class], put(packed), len(packed)))
                    elif registered is not None:
                        add(key, (key, registered, device.id, _SIBLING, _CODE[head.device_class], -1, 0))
                    continue
                tail = classify_tail(device, ctx)
                if tail.candidate or may_be_older_duplicate(device, ctx):  # may still turn out to be a duplicate
                    packed = pack(device)
                    add(key, (key, registered, device.id, _PROVISIONAL, _CODE[tail.device_class], put(packed), len(packed)))
                elif registered is not None:  # may be the newer object of someone else's duplicate
                    counts[tail.device_class] += 1
                    add(key, (key, registered, device.id, _SIBLING, _CODE[tail.device_class], -1, 0))
                else:
                    counts[tail.device_class] += 1
            self.summary.pages += 1
            self.summary.devices_scanned += len(page)
            self.report("listing")
        if self.reader.report is not None:
            self.summary.reading = self.reader.report.record()
            if self.reader.report.fallback:
                self.summary.notes.append(self.reader.report.fallback)

    def discard(self, spill: PartitionSpill, blobs: BlobStore) -> None:
        """Forget a read that could not be shown complete (it is read again)."""
        spill.reset()
        blobs.reset()
        self.summary.findings.update(dict.fromkeys(self.summary.findings, 0))
        self.summary.pages = self.summary.devices_scanned = 0

    # ----------------------------------------------------------------- 3. resolve duplicates, propose

    async def resolve(self, ctx: ClassifyContext, spill: PartitionSpill, blobs: BlobStore, held: PartitionSpill) -> None:
        self.report("resolving")
        counts = self.summary.findings
        for rows in spill.partitions():
            rows.sort(key=_object_id)  # the same verdicts and evidence whatever order the pages came in
            newest = newest_index((row[0], row[1], row[2]) for row in rows)
            local = ctx.with_siblings(MappingSiblings(newest))
            for key, _registered, object_id, state, code, offset, length in rows:
                if state == _SIBLING:
                    continue
                if state == _PROVISIONAL and code not in _CANDIDATE_CODES:
                    best = newest.get(key)
                    if best is None or best.object_id == object_id:
                        counts[CLASS_NAMES[code]] += 1  # no other live object of this hardware: the class stands
                        continue
                device = unpack(blobs.get(offset, length))
                finding = classify(device, local)
                if state == _PROVISIONAL:
                    counts[finding.device_class] += 1
                await self.propose(device, finding, held)

    async def propose(self, device: Device, finding: Finding, held: PartitionSpill) -> None:
        action = propose_action(finding, device, self.policy)
        if action is None:
            return
        summary = self.summary
        summary.actions[action] = summary.actions.get(action, 0) + 1
        cls = finding.device_class.value
        command_id = command_message_id(self.now, device.id, cls, action, summary.policy_hash)
        command = RemediationCommand(
            command_id=command_id,
            run_id=summary.run_id,
            trigger=self.trigger,
            device_object_id=device.id,
            device_id=device.device_id,
            display_name=device.display_name,
            device_class=cls,
            proposed_action=action,
            evidence=dict(finding.evidence),
            snapshot=device,
            policy_hash=summary.policy_hash,
            created_at=self.now,
        )
        body = encode(command)
        if is_device_write(action):
            summary.destructive_proposed += 1
            held.add(None, (command_id, cls, action, body))
        else:
            await self.enqueue(command_id, cls, action, body)

    async def enqueue(self, command_id: str, cls: str, action: str, body: bytes) -> None:
        properties = {"run_id": self.summary.run_id, "device_class": cls, "proposed_action": action, "trigger": self.trigger}
        self.outbox.append(OutgoingMessage(message_id=command_id, body=body, subject=f"{cls}:{action}", properties=properties))
        if len(self.outbox) >= SEND_BATCH:
            await self.flush()

    async def flush(self) -> None:
        """Hand the outbox to the queue in the background; the previous batch must have landed first."""
        if self.outbox:
            batch, self.outbox = self.outbox, []
            await self.landed()
            self.sending = asyncio.ensure_future(self.queue.send(batch))
            await asyncio.sleep(0)  # let the send start: it runs while the next batch is classified

    async def landed(self) -> None:
        """Wait for the batch in flight; its failure fails the run."""
        if self.sending is not None:
            sending, self.sending = self.sending, None
            self.summary.commands_enqueued += await sending
            self.report("enqueueing")

    async def abandon(self) -> None:
        """After a failure: let a batch in flight finish (or fail) quietly; the run's error is what counts."""
        if self.sending is not None:
            with contextlib.suppress(Exception):
                await self.sending
            self.sending = None

    # ----------------------------------------------------------------- 4. breaker

    async def release_or_block(self, held: PartitionSpill, verdict: BreakerVerdict, halts: bool) -> None:
        """Queue the held device writes, or (enforce mode, over the limits) none: each gets a `blocked` decision."""
        blocked: list[AuditEntry] = []
        for command_id, cls, action, body in held.rows():
            if not halts:
                await self.enqueue(command_id, cls, action, body)
                continue
            blocked.append(blocked_decision(decode(body), verdict))
            if len(blocked) >= AUDIT_BATCH:
                await self.append_all(blocked)
                blocked = []
        await self.append_all(blocked)
        await self.flush()
        await self.landed()

    async def append_all(self, entries: list[AuditEntry]) -> None:
        """Append in as few transactions as the store allows."""
        if not entries:
            return
        await self.audit.append_many(entries)
        self.summary.blocked += len(entries)

    async def notify_admins(self, verdict: BreakerVerdict, env: Mapping[str, str] | None) -> dict[str, Any]:
        admins = list(self.policy.notify.admins)
        sender = settings.get("MAIL_SENDER", env)
        if not admins:
            return {"sent": False, "reason": "notify.admins is empty"}
        if not sender:
            return {"sent": False, "reason": "the MAIL_SENDER setting is not set", "to": admins}
        subject, body = breaker_mail(self.summary, verdict, preview=not self.summary.halted)
        try:
            result = await self.graph.send_mail(sender, admins, subject, body)
        except GraphError as exc:
            log.warning("breaker mail to %s failed: %s", admins, exc)
            return {"sent": False, "to": admins, "error": str(exc)}
        return {"sent": result.status < 400, "to": admins, "status": result.status, "request_id": result.request_id}

    # ----------------------------------------------------------------- 5. run record

    def finish_notes(self) -> None:
        unmanaged = self.summary.findings[DeviceClass.UNMANAGED]
        if unmanaged:
            self.summary.notes.append(f"{unmanaged:,} Entra joined Windows devices are {MDM_CHECK}.")
        if self.summary.halted and self.summary.halt_reason:
            self.summary.notes.append(self.summary.halt_reason)
        if self.summary.would_halt:
            self.summary.notes.append(self.summary.would_halt)

    async def record(self) -> None:
        s = self.summary
        await self.audit.append(
            AuditEntry(kind="run", run_id=s.run_id, reason=s.halt_reason, actor=f"entra-janitor/{s.trigger}", data=s.audit_data())
        )


async def run_scan(
    graph: GraphPort,
    queue: QueueSender,
    audit: AuditLog,
    policy: Policy,
    *,
    now: datetime,
    trigger: Trigger = "nightly",
    progress: ProgressCallback | None = None,
    env: Mapping[str, str] | None = None,
    partitions: int = DEFAULT_PARTITIONS,
    reading: ReadPlan | None = None,
) -> ScanSummary:
    """Scan the whole directory once and queue one command per candidate; returns the run summary.

    `now` (aware) is the instant every age is measured from and the UTC day of the MessageIds. `env`
    overrides the process environment for MAIL_SENDER (the breaker's admin mail) and, unless `reading` is
    given, SCAN_PARTITIONS / SCAN_CONCURRENCY (how /devices is read).
    """
    if now.tzinfo is None:
        raise ValueError("run_scan(now=...) must be timezone-aware (UTC), e.g. datetime.now(UTC)")
    run = _Run(graph, queue, audit, policy, now.astimezone(UTC), trigger, progress, reading or ReadPlan.from_settings(env))
    with telemetry.context(run_id=run.summary.run_id):
        return await _scan(run, graph, policy, env, partitions)


async def _scan(run: _Run, graph: GraphPort, policy: Policy, env: Mapping[str, str] | None, partitions: int) -> ScanSummary:
    summary = run.summary
    try:
        run.phase("protected_groups")
        protected = await protected_device_ids(graph, policy)
        kept = await kept_devices(run.audit, run.now, policy.keep.days)  # the owners' keep links (issue 14)
        ctx = ClassifyContext(policy, run.now, protected, kept=kept)
        with PartitionSpill(partitions) as spill, BlobStore() as blobs, PartitionSpill(1, flush_rows=HELD_FLUSH_ROWS) as held:
            run.phase("listing")
            await run.stream(ctx, spill, blobs)
            run.phase("resolving")
            await run.resolve(ctx, spill, blobs, held)
            await run.flush()
            run.phase("releasing")
            verdict = check_breaker(summary.destructive_proposed, summary.devices_scanned, policy.limits)
            summary.breaker = verdict.record()
            halts = verdict.halted and policy.enforce  # report mode writes nothing: the run is the preview
            summary.halted, summary.halt_reason = halts, verdict.reason if halts else None
            if verdict.halted and not halts:
                summary.would_halt = verdict.preview()
            await run.release_or_block(held, verdict, halts)
        if verdict.halted:
            run.phase("notifying")
            summary.admin_notification = await run.notify_admins(verdict, env)
        run.phase(None)
    except Exception as exc:
        await run.abandon()
        summary.halted = True
        summary.halt_reason = f"scan failed: {type(exc).__name__}: {exc}"
        summary.seconds = time.perf_counter() - run.clock
        try:
            await run.record()
        except Exception as record_exc:  # the original failure is what the caller must see
            log.error("could not record the failed scan %s: %s", summary.run_id, record_exc)
        raise
    summary.seconds = time.perf_counter() - run.clock
    run.finish_notes()
    await run.record()
    _count_metrics(summary, run.trigger)
    run.report("done")
    return summary


def _count_metrics(summary: ScanSummary, trigger: str) -> None:
    """The run's figures as telemetry counters (no-ops unless Application Insights is configured)."""
    telemetry.count("devices_scanned", summary.devices_scanned)
    for device_class, n in summary.findings.items():
        if n:
            telemetry.count("findings", n, device_class=device_class)
    telemetry.count("commands_enqueued", summary.commands_enqueued, trigger=trigger)
    if summary.halted:
        breaker = summary.breaker
        per_run = breaker.get("allowed") == breaker.get("max_destructive_per_run")
        telemetry.count("breaker_halts", reason="max_destructive_per_run" if per_run else "max_destructive_fraction")
