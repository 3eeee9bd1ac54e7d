"""`janitor demo` (what `make demo` runs): the nightly job against the tenant simulator, no Azure needed.

Night 1 runs in report mode (nothing written; every decision recorded as dry_run), night 2 in enforce
mode. Each night prints the findings and the decisions; at the end, where the audit log is and how to
read it. Everything lives in a throw-away data folder (default `.janitor/demo`).
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from janitor_cli._common import run
from janitor_cli.work import decision_counts, decisions_table, findings_table

DEMO_BUDGET = 2000  # simulator write budget (and the gateway's pacing) per window, scaled down from 3,000/150 s
DEMO_WINDOW_S = 5.0
DEMO_DIR = Path(".janitor/demo")


def demo_policy(tenant: Any, mode: str) -> dict[str, Any]:
    """The tenant's reference policy (its protected group and name patterns) with notifications to the admin."""
    data = tenant.reference_policy()
    data["mode"] = mode
    data["notify"] = {"owners": True, "admins": [tenant.admin_upn], "digest": True}
    return data


async def _night(console: Console, title: str, tenant: Any, graph: Any, queue: Any, audit: Any, budget: Any, mode: str) -> Any:
    from shared.policy import policy_from_data
    from shared.worker import Worker
    from shared.worker.nightly import run_nightly

    policy = policy_from_data(demo_policy(tenant, mode))
    worker = Worker(graph, audit, budget, policy, mail_sender=tenant.sender_upn, clock=lambda: tenant.now)
    writes_before, mails_before = len(tenant.writes), len(tenant.outbox)
    started = time.perf_counter()
    with console.status(f"{title}: scanning {tenant.device_count:,} devices, then working the queue ..."):
        result = await run_nightly(graph, queue, queue, audit, worker, now=tenant.now)
    seconds = time.perf_counter() - started
    scan = result.scan
    console.rule(f"[bold]{title}[/] (mode {mode}, run {scan.run_id})")
    console.print(findings_table("findings", scan.findings))
    console.print(decisions_table("decisions", await decision_counts(audit, scan.run_id)))
    if scan.halted:
        console.print(f"[bold red]breaker halted the run:[/] {scan.halt_reason}")
    if scan.would_halt:
        console.print(f"[bold yellow]preview:[/] {scan.would_halt}")
    console.print(
        f"{scan.devices_scanned:,} devices scanned, {scan.commands_enqueued:,} commands worked in {seconds:.1f} s; "
        f"{len(tenant.writes) - writes_before:,} device writes, {len(tenant.outbox) - mails_before:,} mails sent"
    )
    return scan


def _fresh(data_dir: Path) -> None:
    """The demo starts from empty stores every time."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)


async def _demo(devices: int, seed: int, data_dir: Path) -> None:
    from shared.audit import SqliteAuditLog
    from shared.graph.gateway import GraphGateway
    from shared.graph.pacer import WritePacer
    from shared.queue import SqliteQueue
    from shared.worker.budget import SqliteBudget
    from simulator import Limits, Tenant, run_simulator

    console = Console()
    _fresh(data_dir)
    with console.status(f"generating a seeded fleet of {devices:,} devices ..."):
        tenant = Tenant.generate(devices=devices, seed=seed)
    audit = SqliteAuditLog(data_dir / "audit.sqlite3")
    queue = SqliteQueue(data_dir / "queue.sqlite3", lock_seconds=120)
    budget = SqliteBudget(data_dir / "budget.sqlite")
    limits = Limits(write_budget=DEMO_BUDGET, write_window_s=DEMO_WINDOW_S)
    try:
        async with run_simulator(tenant, limits=limits) as sim:
            console.print(f"tenant simulator on {sim.base_url} ({devices:,} devices, seed {seed}, "
                          f"write budget {DEMO_BUDGET} per {DEMO_WINDOW_S:g} s)")
            graph = GraphGateway(sim.base_url, None, pacer=WritePacer(DEMO_BUDGET, DEMO_WINDOW_S))
            try:
                first = await _night(console, "night 1", tenant, graph, queue, audit, budget, "report")
                tenant.now = tenant.now + timedelta(days=1)  # the admin reviewed the dry run; the next night enforces
                second = await _night(console, "night 2", tenant, graph, queue, audit, budget, "enforce")
            finally:
                await graph.close()
    finally:
        await queue.close()
        await audit.close()
        await budget.close()
    env = f"JANITOR_DATA_DIR={data_dir}"
    console.rule("[bold]the audit log")
    console.print(f"every decision, intent and outcome is in {data_dir / 'audit.sqlite3'} (hash-chained). Read it with:")
    for line in (
        f"{env} janitor audit list --run-id {first.run_id} --decision dry_run",
        f"{env} janitor audit list --run-id {second.run_id} --decision acted",
        f"{env} janitor audit list --run-id {second.run_id} --decision blocked",
        f"{env} janitor audit verify",
        f"{env} janitor audit report --out audit-report.html --run-id {second.run_id}",
    ):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def demo(
    devices: Annotated[int, typer.Option("--devices", min=100, max=200_000, help="Fleet size.")] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Fleet seed.")] = 7,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Throw-away folder for the demo's stores.")] = DEMO_DIR,
) -> None:
    """Run the nightly job against the tenant simulator: report mode, then enforce mode; no Azure needed."""
    run(_demo(devices, seed, data_dir))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
