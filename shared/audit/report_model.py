"""What the review report says, aggregated from audit records in one pass (pure; no I/O, no HTML).

It reads the record conventions documented in docs/audit.md (kinds run, decision, intent, outcome, ticket)
and copes with any optional field missing: an unknown value is shown as unknown, never guessed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.jsonshape import is_array, is_object
from shared.ports import AuditRecord, ChainBreak

DESTRUCTIVE_ACTIONS: frozenset[str] = frozenset({"disable", "delete"})
MAX_TABLE_ROWS = 1_000  # rows kept per table; the rest are counted and left to the exports
MAX_BARS = 96  # the chart widens its buckets past this many


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The chain verification the report shows."""

    breaks: list[ChainBreak]
    records: int | None = None
    days: int | None = None
    tip: tuple[str, str] | None = None  # (record id, hash) of the newest record checked: an anchor to keep

    @property
    def intact(self) -> bool:
        return not self.breaks


@dataclass(slots=True)
class RunSummary:
    run_id: str
    first_at: datetime | None = None
    last_at: datetime | None = None
    scan: dict[str, Any] = field(default_factory=dict[str, Any])  # merged data of the run's `run` records
    has_scan_record: bool = False
    decisions: Counter[str] = field(default_factory=Counter[str])
    by_class: dict[str, Counter[str]] = field(default_factory=dict[str, Counter[str]])  # device class -> decision -> count
    actions: Counter[str] = field(default_factory=Counter[str])  # acted actions
    undone: Counter[str] = field(default_factory=Counter[str])  # decisions of this run an undo put back, by action

    @property
    def halted(self) -> bool:
        return bool(self.scan.get("halted"))

    @property
    def halt_reason(self) -> str | None:
        reason = self.scan.get("halt_reason")
        return str(reason) if reason else None

    @property
    def would_halt(self) -> str | None:
        """Report mode only: why an enforce run with the same figures would have halted, and what to raise."""
        reason = self.scan.get("would_halt")
        return str(reason) if reason else None

    @property
    def findings(self) -> dict[str, int]:
        found = self.scan.get("findings")
        return {str(k): v for k, v in found.items()} if is_object(found) else {}


@dataclass(frozen=True, slots=True)
class DestructiveRow:
    """One terminal decision about a disable or delete, with its evidence and gates."""

    record: AuditRecord
    gates: list[Mapping[str, Any]]
    evidence: Any
    device_class: str | None
    graph_status: Any = None
    graph_request_id: str | None = None


@dataclass(slots=True)
class TicketCase:
    """A ticket-driven request: what was asked, the diagnosis, and what was decided."""

    ticket: str
    first_at: datetime
    last_at: datetime
    device: str | None = None
    request: str | None = None
    diagnosis: Any = None
    decisions: list[str] = field(default_factory=list[str])
    result: str | None = None


@dataclass(frozen=True, slots=True)
class UndoKeepRow:
    """One undo or keep event: an owner's keep (or its refusal), an undo asked for, an undo decided, a decision undone."""

    record: AuditRecord
    what: str  # keep | keep refused | undo requested | undo decided | undone
    who: str | None
    detail: str | None


@dataclass(slots=True)
class Findings:
    """Consistency checks: things that should never happen in a log written by the worker."""

    writes_without_intent: list[AuditRecord] = field(default_factory=list[AuditRecord])
    repeated_decisions: dict[str, int] = field(default_factory=dict[str, int])  # command id -> number of terminal decisions
    acted_with_failed_gate: list[AuditRecord] = field(default_factory=list[AuditRecord])


@dataclass(slots=True)
class ReportData:
    generated_at: datetime
    filters: dict[str, str]
    verify: VerifyResult
    total: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    kinds: Counter[str] = field(default_factory=Counter[str])
    decisions: Counter[str] = field(default_factory=Counter[str])
    runs: list[RunSummary] = field(default_factory=list[RunSummary])
    timeline: list[tuple[datetime, Counter[str]]] = field(default_factory=list[tuple[datetime, Counter[str]]])
    timeline_bucket: str = "hour"
    timeline_basis: str = "acted"  # acted | dry_run (nothing acted: the chart shows what would have been done)
    destructive: list[DestructiveRow] = field(default_factory=list[DestructiveRow])
    destructive_total: int = 0
    tickets: list[TicketCase] = field(default_factory=list[TicketCase])
    checks: Findings = field(default_factory=Findings)
    undo_keep: list[UndoKeepRow] = field(default_factory=list[UndoKeepRow])
    undo_keep_total: int = 0
    truncated_at: int | None = None  # the report read only this many of the matching records (a bounded request)

    @property
    def halted_runs(self) -> list[RunSummary]:
        return [run for run in self.runs if run.halted]


def _as_list(value: Any) -> list[Mapping[str, Any]]:
    if is_array(value):
        return [g for g in value if is_object(g)]
    return []


def _device(record: AuditRecord) -> str | None:
    entry = record.entry
    return entry.display_name or entry.device_object_id or entry.device_id


def _bucket(span: timedelta) -> tuple[str, timedelta]:
    if span <= timedelta(days=2):
        return "hour", timedelta(hours=1)
    if span <= timedelta(days=90):
        return "day", timedelta(days=1)
    return "week", timedelta(days=7)


class ReportBuilder:
    """Feed records oldest first with `add`, then `build`."""

    def __init__(self, *, generated_at: datetime, filters: Mapping[str, str] | None = None) -> None:
        self._generated_at = generated_at
        self._filters = dict(filters or {})
        self._runs: dict[str, RunSummary] = {}
        self._tickets: dict[str, TicketCase] = {}
        self._destructive: list[DestructiveRow] = []
        self._destructive_total = 0
        self._outcomes: dict[str, Mapping[str, Any]] = {}  # command id -> outcome data (destructive only)
        self._intents: set[str] = set()
        self._terminal: Counter[str] = Counter()
        self._events: dict[str, list[tuple[datetime, str]]] = {"acted": [], "dry_run": []}
        self._checks = Findings()
        self._total = 0
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._kinds: Counter[str] = Counter()
        self._decisions: Counter[str] = Counter()
        self._undo_keep: list[UndoKeepRow] = []
        self._undo_keep_total = 0

    def add_all(self, records: Iterable[AuditRecord]) -> ReportBuilder:
        for record in records:
            self.add(record)
        return self

    def add(self, record: AuditRecord) -> None:
        entry = record.entry
        self._total += 1
        self._first = self._first or record.at
        self._last = record.at
        self._kinds[entry.kind] += 1
        if entry.run_id:
            run = self._runs.setdefault(entry.run_id, RunSummary(entry.run_id))
            run.first_at = run.first_at or record.at
            run.last_at = record.at
        if entry.kind == "run" and entry.run_id:
            run = self._runs[entry.run_id]
            run.scan.update(entry.data)
            run.has_scan_record = True
        elif entry.kind == "intent" and entry.command_id:
            self._intents.add(entry.command_id)
        elif entry.kind == "outcome":
            self._outcome(record)
        elif entry.kind == "decision":
            self._decision(record)
        if entry.kind in ("keep", "undo") or (entry.kind == "decision" and is_object(entry.data.get("undoes"))):
            self._undo_or_keep(record)
        if entry.ticket:
            self._ticket(record)

    def _outcome(self, record: AuditRecord) -> None:
        entry = record.entry
        if entry.command_id and entry.command_id not in self._intents:
            self._checks.writes_without_intent.append(record)
        if entry.command_id and entry.action in DESTRUCTIVE_ACTIONS:
            self._outcomes[entry.command_id] = entry.data

    def _decision(self, record: AuditRecord) -> None:
        entry = record.entry
        decision = entry.decision or "unknown"
        self._decisions[decision] += 1
        if entry.command_id:
            self._terminal[entry.command_id] += 1
        device_class = entry.data.get("device_class")
        device_class = str(device_class) if device_class else "unknown"
        if entry.run_id:
            run = self._runs[entry.run_id]
            run.decisions[decision] += 1
            run.by_class.setdefault(device_class, Counter())[decision] += 1
            if decision == "acted" and entry.action:
                run.actions[entry.action] += 1
        if decision in self._events and entry.action:
            self._events[decision].append((record.at, entry.action))
        gates = _as_list(entry.data.get("gates"))
        if decision == "acted" and any(g.get("passed") is False for g in gates):
            self._checks.acted_with_failed_gate.append(record)
        if entry.action in DESTRUCTIVE_ACTIONS:
            self._destructive_total += 1
            if len(self._destructive) < MAX_TABLE_ROWS:
                self._destructive.append(
                    DestructiveRow(record, gates, entry.data.get("evidence"), device_class if device_class != "unknown" else None)
                )

    def _undo_or_keep(self, record: AuditRecord) -> None:
        entry = record.entry
        if entry.kind == "undo" and entry.decision == "undone" and entry.run_id in self._runs:
            self._runs[entry.run_id].undone[entry.action or "unknown"] += 1
        self._undo_keep_total += 1
        if len(self._undo_keep) >= MAX_TABLE_ROWS:
            return
        if entry.kind == "keep":
            what = "keep" if entry.decision == "acted" else "keep refused"
        elif entry.kind == "undo":
            what = "undone" if entry.decision == "undone" else "undo requested"
        else:
            what = f"undo decided: {entry.action or '?'} {entry.decision or '?'}"
        self._undo_keep.append(UndoKeepRow(record, what, entry.actor, entry.reason))

    def _ticket(self, record: AuditRecord) -> None:
        entry = record.entry
        ticket = entry.ticket or ""
        case = self._tickets.get(ticket)
        if case is None:
            if len(self._tickets) >= MAX_TABLE_ROWS:
                return
            case = self._tickets[ticket] = TicketCase(ticket, record.at, record.at)
        case.last_at = record.at
        case.device = case.device or _device(record)
        data = entry.data
        if entry.kind == "ticket" and case.request is None:
            request = data.get("request") or data.get("summary") or entry.reason
            case.request = str(request) if request else None
        if data.get("diagnosis"):
            case.diagnosis = data["diagnosis"]
        if entry.kind == "decision" and entry.decision:
            case.decisions.append(f"{entry.action or 'none'}: {entry.decision}")
        if entry.kind == "ticket" and data.get("result"):
            case.result = str(data["result"])

    def _timeline(self) -> tuple[list[tuple[datetime, Counter[str]]], str, str]:
        basis = "acted" if self._events["acted"] else "dry_run"
        events = self._events[basis]
        if not events:
            return [], "hour", basis
        start, end = events[0][0], events[-1][0]
        name, step = _bucket(end - start)
        origin = start.replace(minute=0, second=0, microsecond=0)
        if name != "hour":
            origin = origin.replace(hour=0)
        while int((end - origin) / step) + 1 > MAX_BARS:
            step *= 2
        count = int((end - origin) / step) + 1
        buckets = [(origin + i * step, Counter[str]()) for i in range(count)]
        for at, action in events:
            buckets[int((at - origin) / step)][1][action] += 1
        return buckets, name, basis

    def build(self, verify: VerifyResult) -> ReportData:
        for row_index, row in enumerate(self._destructive):
            outcome = self._outcomes.get(row.record.entry.command_id or "")
            if outcome:
                self._destructive[row_index] = DestructiveRow(
                    row.record, row.gates, row.evidence, row.device_class, outcome.get("status"), outcome.get("request_id")
                )
        self._checks.repeated_decisions = {cid: n for cid, n in self._terminal.items() if n > 1}
        timeline, bucket, basis = self._timeline()
        return ReportData(
            generated_at=self._generated_at,
            filters=self._filters,
            verify=verify,
            total=self._total,
            first_at=self._first,
            last_at=self._last,
            kinds=self._kinds,
            decisions=self._decisions,
            runs=sorted(self._runs.values(), key=lambda r: (r.first_at or self._generated_at, r.run_id)),
            timeline=timeline,
            timeline_bucket=bucket,
            timeline_basis=basis,
            destructive=self._destructive,
            destructive_total=self._destructive_total,
            tickets=list(self._tickets.values()),
            checks=self._checks,
            undo_keep=self._undo_keep,
            undo_keep_total=self._undo_keep_total,
        )
