"""`janitor scan [--policy FILE] [--json]`: the nightly scan, run once from here with the configured adapters."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from janitor_cli._common import run
from shared.scan import ScanProgress, ScanSummary
from shared.scan.service import ProgressCallback
from shared.scan.wiring import run_configured_scan


def scan(
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy YAML (default: JANITOR_POLICY, else defaults).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object and nothing else.")] = False,
) -> None:
    """Scan every device, classify, and queue one remediation command per candidate."""
    console = Console(stderr=True)
    with progress_display(console, enabled=not as_json and console.is_terminal) as progress:
        summary = run(run_configured_scan(policy_path=policy, trigger="manual", progress=progress))
    if as_json:
        sys.stdout.write(json.dumps(summary.to_json()) + "\n")
    else:
        print_summary(Console(), summary)


@contextmanager
def progress_display(console: Console, *, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on a terminal (devices read of the counted total, pages, partitions in flight,
    devices/s, time left), gone once the scan is done; nothing otherwise."""
    if not enabled:
        yield None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[read]}"),
        TextColumn("{task.fields[pages]:,} pages"),
        TextColumn("{task.fields[partitions]}"),
        TextColumn("{task.fields[rate]:,.0f} devices/s"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("counting", read="", pages=0, partitions="", rate=0.0, total=None)

    def update(event: ScanProgress) -> None:
        rate = event.devices / event.elapsed if event.elapsed > 0 else 0.0
        read = f"{event.devices:,} of {event.total:,} devices" if event.total else f"{event.devices:,} devices"
        partitions = f"{event.partitions_in_flight} of {event.partitions} partitions in flight" if event.partitions > 1 else ""
        bar.update(
            task, description=event.phase, completed=event.devices, total=event.total or None,
            read=read, pages=event.pages, partitions=partitions, rate=rate,
        )  # fmt: skip
        if event.phase == "done":
            bar.stop()

    with bar:
        yield update


def print_summary(console: Console, summary: ScanSummary) -> None:
    """The run as a readable table: findings per class, proposed actions, and whether the breaker halted it."""
    table = Table(title=f"Scan {summary.run_id} ({summary.mode} mode)", show_footer=True)
    table.add_column("class", footer="devices scanned")
    table.add_column("devices", justify="right", footer=f"{summary.devices_scanned:,}")
    for name, count in summary.findings.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    if summary.actions:
        actions = Table(title="Proposed actions")
        actions.add_column("action")
        actions.add_column("commands", justify="right")
        for name, count in sorted(summary.actions.items()):
            actions.add_row(name, f"{count:,}")
        console.print(actions)
    rate = summary.devices_scanned / summary.seconds if summary.seconds else 0.0
    console.print(
        f"{summary.commands_enqueued:,} commands queued; {summary.pages:,} pages in {summary.seconds:.1f} s "
        f"({rate:,.0f} devices/s); policy {summary.policy_hash}"
    )
    if summary.halted:
        console.print(f"[bold red]HALTED[/]: {summary.halt_reason}")
        console.print(f"{summary.blocked:,} device-write commands were not queued (blocked decisions are in the audit log).")
    if summary.would_halt:
        console.print(f"[bold yellow]PREVIEW[/]: {summary.would_halt}")
    for note in summary.notes:
        if note not in (summary.halt_reason, summary.would_halt):
            console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
