"""Load: a 1,000,000-device nightly scan, then 20,000 of its commands worked at the simulator's write budget.

    python bench/load.py [--devices 1000000] [--commands 20000] [--budget 3000 --window 60] [--json]

The simulator serves the generated fleet from its own process (so this one measures the client), with its
write budget on. Two phases, one process (this one), the same files:
1. scan: `run_scan` over every device (real gateway, classification, duplicate spill, breaker, the SQLite
   audit log), every command enqueued to the embedded SQLite queue. The breaker's limits are opened so the
   whole fleet's commands are queued.
2. work: the first `--commands` device-writing commands the scan queued (disable and tag: one PATCH each)
   are moved to a work queue and drained with `drain` + `Worker` (the code `janitor work` runs) in enforce
   mode, through the gateway's $batch writes paced at the budget, with the SQLite audit log and budget.

Graph allows 3,000 writes per 150 s (20/s); 20,000 writes at that pace take 17 minutes, so the default
window is scaled to 60 s (the same 3,000 writes, 50/s: 2.5x Graph's pace, still below the ~100 settled
messages/s the embedded queue sustains). Utilisation (writes per second / budget per second) does not
depend on the scale; `--window 150` runs at Graph's real pace.

Output (JSON): scan seconds and devices/s, commands queued; work seconds, writes, writes/s, the budget per
second and its utilisation, decisions, failed, Graph retries the client made (429/5xx); wall time; peak
RSS of this process and of the simulator process (MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.scan_pipeline import NOW, bench_policy  # noqa: E402
from shared.audit import SqliteAuditLog  # noqa: E402
from shared.graph.gateway import GraphGateway  # noqa: E402
from shared.graph.pacer import WritePacer  # noqa: E402
from shared.policy import policy_from_data  # noqa: E402
from shared.ports import AuditQuery, OutgoingMessage  # noqa: E402
from shared.queue import SqliteQueue  # noqa: E402
from shared.scan import run_scan  # noqa: E402
from shared.worker import Worker, drain  # noqa: E402
from shared.worker.budget import SqliteBudget  # noqa: E402
from simulator import Limits, SimulatorProcess  # noqa: E402

WRITE_ACTIONS = ("disable", "tag")  # one PATCH each: the work phase is bound by the write budget


class RetryCounter(logging.Handler):
    """Counts the gateway's retry log lines (one per 429/5xx it waited out)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Graph retry"):
            self.count += 1


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory of this process, or of another one (Linux /proc VmHWM)."""
    if pid is None:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def move_writes(source: SqliteQueue, target: SqliteQueue, count: int) -> int:
    """Move the first `count` device-writing commands of the scan's queue to the work queue."""
    moved = 0
    while moved < count:
        batch = await source.receive(max_messages=500)
        if not batch:
            break
        chosen = [m for m in batch if m.properties.get("proposed_action") in WRITE_ACTIONS][: count - moved]
        await target.send([OutgoingMessage(message_id=m.message_id, body=m.body) for m in chosen])
        for message in batch:
            await source.complete(message)
        moved += len(chosen)
    return moved


async def scan(base_url: str, policy_data: dict, tmp: Path) -> dict[str, Any]:
    graph = GraphGateway(base_url, None)
    queue = SqliteQueue(tmp / "scan-queue.sqlite3", lock_seconds=600)
    audit = SqliteAuditLog(tmp / "audit.sqlite3")
    try:
        started = time.perf_counter()
        summary = await run_scan(graph, queue, audit, policy_from_data(policy_data), now=NOW, trigger="manual")
        seconds = time.perf_counter() - started
    finally:
        await graph.close()
        await queue.close()
        await audit.close()
    return {
        "devices": summary.devices_scanned,
        "seconds": round(seconds, 1),
        "devices_per_s": round(summary.devices_scanned / seconds),
        "commands_enqueued": summary.commands_enqueued,
        "actions": summary.actions,
        "halted": summary.halted,
        "peak_rss_mb": peak_rss_mb(),
    }


async def work(base_url: str, policy_data: dict, tmp: Path, commands: int, budget: int, window: float,
               concurrency: int) -> dict[str, Any]:
    source = SqliteQueue(tmp / "scan-queue.sqlite3", lock_seconds=600)
    queue = SqliteQueue(tmp / "work-queue.sqlite3", lock_seconds=300)
    moved = await move_writes(source, queue, commands)
    await source.close()
    data = {**policy_data, "mode": "enforce", "notify": {"owners": False, "admins": [], "digest": False}}
    data["limits"] = {**data["limits"], "max_destructive_per_day": 10_000_000}
    graph = GraphGateway(base_url, None, pacer=WritePacer(budget, window))
    audit = SqliteAuditLog(tmp / "audit.sqlite3")
    store = SqliteBudget(tmp / "budget.sqlite")
    worker = Worker(graph, audit, store, policy_from_data(data), clock=lambda: NOW)
    retries = RetryCounter()
    logging.getLogger("shared.graph.retry").addHandler(retries)
    try:
        await graph.get_device("00000000-0000-0000-0000-000000000000")  # builds the SDK client outside the timing
        started = time.perf_counter()
        stats = await drain(queue, worker, concurrency=concurrency)
        seconds = time.perf_counter() - started
        skipped: dict[str, int] = {}
        async for record in audit.iter_records(AuditQuery(kind="decision", decision="skipped")):
            why = (record.entry.reason or "").split(":")[0][:60]
            skipped[why] = skipped.get(why, 0) + 1
    finally:
        logging.getLogger("shared.graph.retry").removeHandler(retries)
        await graph.close()
        await queue.close()
        await audit.close()
        await store.close()
    writes = sum(n for action, n in worker.stats.actions.items() if action in WRITE_ACTIONS)
    per_s = writes / seconds
    budget_per_s = budget / window
    return {
        "commands": moved,
        "seconds": round(seconds, 1),
        "writes": writes,
        "writes_per_s": round(per_s, 2),
        "write_budget_per_s": round(budget_per_s, 2),
        "budget_utilisation": round(per_s / budget_per_s, 4),
        "decisions": dict(worker.stats.decisions),
        "skipped_because": skipped,
        "failed": worker.stats.decisions.get("failed", 0) + stats.dead_lettered,
        "graph_retries": retries.count,
        "concurrency": concurrency,
        "peak_rss_mb": peak_rss_mb(),
    }


async def main(devices: int, commands: int, budget: int, window: float, concurrency: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    limits = Limits(write_budget=budget, write_window_s=window)
    with SimulatorProcess(devices=devices, seed=seed, now=NOW, limits=limits) as sim, \
            tempfile.TemporaryDirectory(prefix="janitor-load-") as tmp:
        policy_data = bench_policy(sim.info["protected_group_id"])
        scanned = await scan(sim.base_url, policy_data, Path(tmp))
        worked = await work(sim.base_url, policy_data, Path(tmp), commands, budget, window, concurrency)
        simulator_rss = peak_rss_mb(sim.pid)
    return {
        "devices": devices,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "simulator_generation_s": sim.info.get("generated_s"),
        "scan": scanned,
        "work": worked,
        "budget_scale": f"{budget} writes per {window:g} s (Graph: 3000 per 150 s)",
        "peak_rss_mb": {"client": peak_rss_mb(), "simulator": simulator_rss},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--budget", type=int, default=3000, help="simulator and gateway writes per window")
    parser.add_argument("--window", type=float, default=60.0, help="write window in seconds (Graph: 150)")
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="one JSON line (the default prints it indented)")
    args = parser.parse_args()
    result = asyncio.run(main(args.devices, args.commands, args.budget, args.window, args.concurrency, args.seed))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
