"""Worker throughput against the simulator with its write budget on: prints one JSON line.

    python bench/worker.py --commands 5000 [--budget 3000 --window 60] [--concurrency 128]

N disable commands (for distinct, unprotected, cloud-joined Windows devices of a generated fleet) are
queued on the embedded queue and worked with `drain` (the code `janitor work` runs) through the real
gateway, the SQLite audit log and the SQLite budget. The simulator and the gateway's pacer share the same
write budget (`--budget` writes per `--window` seconds: Graph's 3,000 writes, in a shorter window).

Output: commands, seconds, actions_per_s (successful device writes per second of work),
write_budget_per_s (budget / window), budget_utilisation (their ratio), failed (failed decisions plus
dead letters), throttled_retries (429s the simulator answered, inner ones included; each retried by the gateway), decisions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.audit import SqliteAuditLog  # noqa: E402
from shared.commands import RemediationCommand, encode, message_id  # noqa: E402
from shared.graph.gateway import GraphGateway  # noqa: E402
from shared.graph.pacer import WritePacer  # noqa: E402
from shared.models import Device  # noqa: E402
from shared.policy import policy_from_data  # noqa: E402
from shared.ports import OutgoingMessage  # noqa: E402
from shared.queue import SqliteQueue  # noqa: E402
from shared.worker import Worker, drain  # noqa: E402
from shared.worker.budget import SqliteBudget  # noqa: E402
from simulator import Limits, Tenant, run_simulator  # noqa: E402

EXCLUDE = ("protected_group", "protected_name", "autopilot", "hybrid", "pending", "non_windows", "disabled_by_janitor")


def candidates(tenant: Tenant, count: int) -> list[Device]:
    """Enabled, unprotected, cloud-joined Windows devices: each can take exactly one disable."""
    picked: list[Device] = []
    for object_id in tenant.truth.ids_with(without=EXCLUDE):
        data = tenant.device_json(object_id)
        if not data or data.get("accountEnabled") is not True or data.get("trustType") == "ServerAd":
            continue
        if not str(data.get("operatingSystem", "")).lower().startswith("windows"):
            continue
        picked.append(msgspec.convert(data, Device))
        if len(picked) == count:
            break
    return picked


def commands_for(devices: list[Device], tenant: Tenant) -> list[OutgoingMessage]:
    run_id = "bench-worker"
    out = []
    for dev in devices:
        cid = message_id(run_id, dev.id)
        cmd = RemediationCommand(
            command_id=cid, run_id=run_id, trigger="manual", device_object_id=dev.id, device_id=dev.device_id,
            display_name=dev.display_name, device_class="stale", proposed_action="disable", evidence={"bench": True},
            snapshot=dev, policy_hash="bench", created_at=tenant.now,
        )
        out.append(OutgoingMessage(message_id=cid, body=encode(cmd)))
    return out


async def bench(n: int, budget: int, window: float, concurrency: int, devices: int, seed: int) -> dict:
    tenant = Tenant.generate(devices=devices, seed=seed)
    chosen = candidates(tenant, n)
    if len(chosen) < n:
        raise SystemExit(f"error: the {devices}-device fleet has only {len(chosen)} suitable devices; raise --devices")
    policy = policy_from_data({
        "mode": "enforce",
        "limits": {"max_destructive_per_run": n, "max_destructive_per_day": n, "max_destructive_fraction": 0.5},
        "notify": {"owners": False, "admins": [], "digest": False},
    })
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        queue = SqliteQueue(Path(tmp) / "queue.sqlite3", lock_seconds=300)
        audit = SqliteAuditLog(Path(tmp) / "audit.sqlite3")
        store = SqliteBudget(Path(tmp) / "budget.sqlite")
        await queue.send(commands_for(chosen, tenant))
        async with run_simulator(tenant, limits=Limits(write_budget=budget, write_window_s=window)) as sim:
            graph = GraphGateway(sim.base_url, None, pacer=WritePacer(budget, window))
            worker = Worker(graph, audit, store, policy, clock=lambda: tenant.now)
            await graph.get_device(chosen[0].id)  # builds the SDK client (a one-off import cost), outside the timing
            started = time.perf_counter()
            stats = await drain(queue, worker, concurrency=concurrency)
            seconds = time.perf_counter() - started
            throttled = sim.stats.throttled
            await graph.close()
        await queue.close()
        await audit.close()
        await store.close()
    writes = [w for w in tenant.writes if w.method == "PATCH"]
    actions_per_s = len(writes) / seconds
    budget_per_s = budget / window
    failed = worker.stats.decisions.get("failed", 0) + stats.dead_lettered
    return {
        "commands": n,
        "seconds": round(seconds, 2),
        "actions": len(writes),
        "actions_per_s": round(actions_per_s, 2),
        "write_budget_per_s": round(budget_per_s, 2),
        "budget_utilisation": round(actions_per_s / budget_per_s, 4),
        "failed": failed,
        "throttled_retries": throttled,
        "decisions": worker.stats.decisions,
        "concurrency": concurrency,
        "started_at": tenant.now.astimezone(UTC).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--budget", type=int, default=3000, help="simulator and gateway writes per window")
    parser.add_argument("--window", type=float, default=60.0, help="write window in seconds (Graph: 150)")
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--devices", type=int, default=0, help="fleet size (default: 3 x commands)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    result = asyncio.run(bench(args.commands, args.budget, args.window, args.concurrency,
                               args.devices or max(2000, 3 * args.commands), args.seed))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
