"""`janitor work` drains the queue with the worker; `janitor run` is the nightly job (scan, then work)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from janitor_cli._common import run
from shared.ports import AuditLog, AuditQuery

if TYPE_CHECKING:
    from shared.scan.service import ProgressCallback

PolicyOption = Annotated[
    Path | None, typer.Option("--policy", help="Policy YAML (default: JANITOR_POLICY, else the safe defaults: report mode).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
ConcurrencyOption = Annotated[int, typer.Option("--concurrency", min=1, max=512, help="Commands handled at once.")]


async def decision_counts(audit: AuditLog, run_id: str) -> Counter[tuple[str, str, str]]:
    """(device class, decision, action) -> commands, from the run's decision records."""
    counts: Counter[tuple[str, str, str]] = Counter()
    async for record in audit.iter_records(AuditQuery(run_id=run_id, kind="decision")):
        entry = record.entry
        counts[(str(entry.data.get("device_class", "?")), entry.decision or "?", entry.action or "?")] += 1
    return counts


def findings_table(title: str, findings: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("class")
    table.add_column("devices", justify="right")
    for name, count in findings.items():
        table.add_row(name, f"{count:,}")
    return table


def decisions_table(title: str, counts: Counter[tuple[str, str, str]]) -> Table:
    table = Table(title=title)
    for column in ("class", "decision", "action"):
        table.add_column(column)
    table.add_column("commands", justify="right")
    for (cls, decision, action), count in sorted(counts.items()):
        table.add_row(cls, decision, action, f"{count:,}")
    return table


def drain_json(stats: Any, worker: Any) -> dict[str, Any]:
    return {
        "received": stats.received,
        "completed": stats.completed,
        "dead_lettered": stats.dead_lettered,
        "abandoned": stats.abandoned,
        "seconds": round(stats.seconds, 3),
        "decisions": dict(worker.stats.decisions),
        "actions": dict(worker.stats.actions),
        "device_writes": worker.stats.device_writes,
        "mails": worker.stats.mails,
    }


async def _work(policy_path: Path | None, concurrency: int, until_empty: bool, as_json: bool) -> None:
    from shared import bootstrap
    from shared.policy import load_policy
    from shared.worker import drain, open_worker

    policy = load_policy(policy_path)
    worker = open_worker(policy=policy)
    receiver = bootstrap.queue_receiver()
    try:
        stats = await drain(receiver, worker, concurrency=concurrency, until_empty=until_empty)
    finally:
        await receiver.close()
        await _close(worker)
    out = drain_json(stats, worker)
    if as_json:
        print(json.dumps(out))
        return
    console = Console()
    console.print(f"worked {stats.received:,} message(s) in {stats.seconds:.1f} s (policy mode: {policy.mode})")
    table = Table(title="decisions")
    table.add_column("decision")
    table.add_column("commands", justify="right")
    for name, count in sorted(worker.stats.decisions.items()):
        table.add_row(name, f"{count:,}")
    console.print(table)


async def _close(worker: Any) -> None:
    for closable in (worker.graph, worker.audit, worker.durable_budget, worker.lease):
        close = getattr(closable, "close", None)
        if close is not None:
            await close()


async def _run(policy_path: Path | None, concurrency: int, as_json: bool, progress: ProgressCallback | None) -> None:
    from shared import bootstrap
    from shared.policy import load_policy
    from shared.worker import open_worker
    from shared.worker.nightly import run_nightly

    policy = load_policy(policy_path)
    worker = open_worker(policy=policy)
    sender, receiver = bootstrap.queue_sender(), bootstrap.queue_receiver()
    try:
        result = await run_nightly(
            worker.graph, sender, receiver, worker.audit, worker, now=datetime.now(UTC), concurrency=concurrency,
            scan_progress=progress,
        )
        counts = await decision_counts(worker.audit, result.scan.run_id)
    finally:
        await sender.close()
        await receiver.close()
        await _close(worker)
    if as_json:
        print(json.dumps({"scan": result.scan.to_json(), "work": drain_json(result.drain, worker)}))
        return
    console = Console()
    console.print(findings_table(f"run {result.scan.run_id}: findings", result.scan.findings))
    console.print(decisions_table(f"run {result.scan.run_id}: decisions (mode {policy.mode})", counts))
    if result.scan.halted:
        console.print(f"[bold red]breaker halted the run:[/] {result.scan.halt_reason}")
    if result.scan.would_halt:
        console.print(f"[bold yellow]preview:[/] {result.scan.would_halt}")


def work(
    policy: PolicyOption = None,
    until_empty: Annotated[bool, typer.Option("--until-empty/--forever", help="Stop when the queue is empty.")] = True,
    concurrency: ConcurrencyOption = 64,
    as_json: JsonOption = False,
) -> None:
    """Work the remediation queue: every command through the gates, audited; one decision each."""
    run(_work(policy, concurrency, until_empty, as_json))


def run_command(policy: PolicyOption = None, concurrency: ConcurrencyOption = 64, as_json: JsonOption = False) -> None:
    """The nightly job on this machine: scan the tenant, then work the queue until it is empty."""
    from janitor_cli.scan import progress_display

    console = Console(stderr=True)
    with progress_display(console, enabled=not as_json and console.is_terminal) as progress:
        run(_run(policy, concurrency, as_json, progress))


def register(app: typer.Typer) -> None:
    app.command("work")(work)
    app.command("run")(run_command)
