"""The nightly job on one machine: scan, then work the queue until it is empty (`janitor run`, the demo)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.ports import AuditLog, GraphPort, QueueReceiver, QueueSender
from shared.worker.drain import DrainStats, drain
from shared.worker.handler import Worker


@dataclass(frozen=True, slots=True)
class NightlyResult:
    scan: object  # shared.scan.ScanSummary
    drain: DrainStats
    worker: Worker


async def run_nightly(
    graph: GraphPort,
    sender: QueueSender,
    receiver: QueueReceiver,
    audit: AuditLog,
    worker: Worker,
    *,
    now: datetime,
    concurrency: int = 64,
    scan_progress: Callable[..., None] | None = None,
    work_progress: Callable[[DrainStats], None] | None = None,
) -> NightlyResult:
    """Scan with the worker's policy, then drain the queue with the worker."""
    from shared.scan import run_scan

    summary = await run_scan(graph, sender, audit, worker.policy, now=now, progress=scan_progress)
    stats = await drain(receiver, worker, concurrency=concurrency, until_empty=True, progress=work_progress)
    return NightlyResult(summary, stats, worker)
