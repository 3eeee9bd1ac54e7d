"""The scan pipeline against the raw bound: prints one JSON line.

    python bench/scan_pipeline.py --devices 1000000 [--profile mixed] [--seed 7]

The simulator serves a generated fleet from a child process (throttling off), so this process measures the
client. Two passes over the same pages:
- raw bound: every page fetched with an httpx client ($select of the scan's fields, $top=999, following
  @odata.nextLink) and decoded with json.loads, nothing else (run before and after the pipeline; the
  faster of the two is the bound, which makes the ratio conservative);
- pipeline: `run_scan` itself through the real GraphGateway, classification, the duplicate spill, the
  breaker, and every command enqueued to the embedded SQLite queue (with the SQLite audit log).
The policy is the simulator's reference policy with the blast-radius limits opened, so every command of the
fleet is enqueued (a halted run would skip the destructive ones).

Output: devices, seconds, devices_per_s, raw_devices_per_s, ratio_to_raw, commands_enqueued, halted,
timings (seconds per scan phase), findings_match_truth (the run's class counts equal the simulator's ground
truth), peak_rss_mb (this process only, taken before the second raw pass; the simulator runs in its own).
`python bench/scan.py --mode pipeline` runs the same measurement (`measure`) on that script's simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from shared.audit import SqliteAuditLog  # noqa: E402
from shared.graph.gateway import GraphGateway  # noqa: E402
from shared.models import DEVICE_SELECT  # noqa: E402
from shared.policy import policy_from_data  # noqa: E402
from shared.queue import SqliteQueue  # noqa: E402
from shared.scan import run_scan  # noqa: E402
from simulator import Limits, SimulatorProcess, Tenant  # noqa: E402

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


async def raw_bound(base_url: str) -> tuple[int, float]:
    """Devices and seconds for fetching every page and json.loads-ing it, nothing else."""
    url: str | None = f"{base_url}/devices?$select={','.join(DEVICE_SELECT)}&$top=999"
    devices = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        while url:
            page = json.loads((await client.get(url)).content)
            devices += len(page["value"])
            url = page.get("@odata.nextLink")
    return devices, time.perf_counter() - started


def bench_policy(protected_group_id: str | None = None) -> dict:
    """The simulator's reference policy with the blast-radius limits opened, so every command is enqueued."""
    policy = Tenant.generate(devices=0, seed=0, now=NOW).reference_policy()
    policy["protect"]["groups"] = [protected_group_id] if protected_group_id else []
    policy["limits"] = {"max_destructive_per_run": 10_000_000, "max_destructive_fraction": 0.5}
    return policy


async def measure(base_url: str, policy_data: dict, now: datetime) -> dict:
    """Raw bound, pipeline, raw bound again, against a simulator that is already serving."""
    raw_before = await raw_bound(base_url)
    with tempfile.TemporaryDirectory(prefix="janitor-bench-") as tmp:
        graph = GraphGateway(base_url, None)
        queue = SqliteQueue(Path(tmp) / "queue.sqlite3")
        audit = SqliteAuditLog(Path(tmp) / "audit.sqlite3")
        try:
            started = time.perf_counter()
            summary = await run_scan(graph, queue, audit, policy_from_data(policy_data), now=now, trigger="manual")
            seconds = time.perf_counter() - started
        finally:
            await graph.close()
            await queue.close()
            await audit.close()
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    raw_after = await raw_bound(base_url)
    raw_devices, raw_seconds = min(raw_before, raw_after, key=lambda r: r[1])
    raw_rate = raw_devices / raw_seconds
    rate = summary.devices_scanned / seconds
    return {
        "devices": summary.devices_scanned,
        "seconds": round(seconds, 2),
        "devices_per_s": round(rate),
        "raw_devices_per_s": round(raw_rate),
        "ratio_to_raw": round(rate / raw_rate, 3),
        "commands_enqueued": summary.commands_enqueued,
        "halted": summary.halted,
        "timings": summary.timings,
        "findings": summary.findings,
        "peak_rss_mb": peak,
    }


async def main(devices: int, seed: int, profile: str) -> dict:
    with SimulatorProcess(devices=devices, seed=seed, profile=profile, now=NOW, limits=Limits.off()) as sim:
        result = await measure(sim.base_url, bench_policy(sim.info["protected_group_id"]), NOW)
        result["findings_match_truth"] = result.pop("findings") == sim.info["class_counts"]
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", default="mixed", choices=("mixed", "stale20", "clean"))
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.devices, args.seed, args.profile))))
