"""Audit log throughput for both adapters: prints one JSON line.

    python bench/audit.py --records 1000000 [--days 30] [--table-records 5000] [--single 2000]

SQLite: `--single` appends one by one (each a durable transaction), as many again from 64 concurrent
tasks (group commit shares transactions), then the rest of `--records` with append_many in batches of
1,000, all spread evenly over `--days` UTC days; then queries: one day's first page
(500 records), the whole day (every record of that day, decoded), a device's records in that day, a
decision filter over the day, and a full verify. Table Storage: the same against Azurite (started here,
in memory) with `--table-records` records.

Output keys: records, days, sqlite{append_per_s, append_64_tasks_per_s, append_many_per_s, day_first_page_ms, day_all_ms,
day_records, day_device_ms, day_decision_page_ms, iterate_per_s, verify_per_s, file_mb},
table{records, append_per_s, append_64_tasks_per_s, append_many_per_s, day_first_page_ms, day_all_ms, day_records, iterate_per_s}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.audit import SqliteAuditLog, TableAuditLog  # noqa: E402
from shared.ports import AuditEntry, AuditLog, AuditQuery  # noqa: E402
from tests.fixtures.azurite import azurite_process  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
DECISIONS = ("acted", "dry_run", "skipped", "blocked", "deferred")
ACTIONS = ("disable", "tag", "notify", "delete")


def entry(i: int) -> AuditEntry:
    """A decision record shaped like the worker's (gates, evidence), for device i of a 50,000-device fleet."""
    device = i % 50_000
    return AuditEntry(
        kind="decision",
        run_id=f"run-{i // 20_000:05d}",
        command_id=f"cmd-{i:09d}",
        device_object_id=f"{device:08x}-0000-4000-8000-000000000000",
        device_id=f"{device:08x}-1111-4000-8000-000000000000",
        display_name=f"DESKTOP-{device:06d}",
        decision=DECISIONS[i % len(DECISIONS)],
        action=ACTIONS[i % len(ACTIONS)],
        reason="stale: no sign-in for 120 days",
        data={
            "device_class": "stale",
            "gates": [{"name": name, "passed": True, "reason": "ok"} for name in ("kill_switch", "fresh_state", "protection")],
            "evidence": {"approximateLastSignInDateTime": "2024-09-01T00:00:00Z", "trustType": "AzureAd"},
        },
    )


def spread_clock(records: int, days: int) -> Callable[[], datetime]:
    """Each reading moves forward so `records` readings cover `days` days."""
    step = timedelta(days=days) / max(records, 1)
    state = {"n": 0}

    def clock() -> datetime:
        state["n"] += 1
        return START + step * state["n"]

    return clock


async def fill(audit: Any, total: int, single: int, concurrency: int = 64) -> dict[str, float]:
    """`single` sequential appends, as many again from `concurrency` tasks (group commit), then batches."""
    begin = time.perf_counter()
    for i in range(single):
        await audit.append(entry(i))
    single_s = time.perf_counter() - begin
    begin = time.perf_counter()
    lanes = [range(single + lane, 2 * single, concurrency) for lane in range(concurrency)]

    async def lane(indexes: range) -> None:
        for i in indexes:
            await audit.append(entry(i))

    await asyncio.gather(*(lane(indexes) for indexes in lanes))
    concurrent_s = time.perf_counter() - begin
    begin = time.perf_counter()
    for start in range(2 * single, total, 1_000):
        await audit.append_many([entry(i) for i in range(start, min(total, start + 1_000))])
    many_s = time.perf_counter() - begin
    out = {"append_per_s": round(single / single_s) if single else None}
    out[f"append_{concurrency}_tasks_per_s"] = round(single / concurrent_s) if single else None
    out["append_many_per_s"] = round((total - 2 * single) / many_s) if total > 2 * single else None
    return out


async def queries(audit: AuditLog, days: int) -> dict[str, Any]:
    day = START + timedelta(days=days // 2)
    window = AuditQuery(since=day, until=day + timedelta(days=1))
    out: dict[str, Any] = {}
    begin = time.perf_counter()
    page = await audit.query(window, limit=500)
    out["day_first_page_ms"] = round((time.perf_counter() - begin) * 1000, 1)
    begin = time.perf_counter()
    count = sum([1 async for _ in audit.iter_records(window)])
    out["day_all_ms"] = round((time.perf_counter() - begin) * 1000, 1)
    out["day_records"] = count
    device = page.records[0].entry.display_name if page.records else "DESKTOP-000001"
    begin = time.perf_counter()
    await audit.query(AuditQuery(since=window.since, until=window.until, device=device), limit=500)
    out["day_device_ms"] = round((time.perf_counter() - begin) * 1000, 1)
    begin = time.perf_counter()
    await audit.query(AuditQuery(since=window.since, until=window.until, decision="blocked"), limit=500)
    out["day_decision_page_ms"] = round((time.perf_counter() - begin) * 1000, 1)
    return out


async def iterate(audit: AuditLog) -> float:
    begin = time.perf_counter()
    count = sum([1 async for _ in audit.iter_records(AuditQuery())])
    return round(count / (time.perf_counter() - begin))


async def bench_sqlite(workdir: Path, records: int, days: int, single: int) -> dict[str, Any]:
    path = workdir / "audit.sqlite3"
    audit = SqliteAuditLog(path, clock=spread_clock(records, days))
    result = await fill(audit, records, min(single, records // 2))
    result.update(await queries(audit, days))
    if records <= 200_000:  # a full scan at 1M adds a minute and says nothing new
        result["iterate_per_s"] = await iterate(audit)
    begin = time.perf_counter()
    breaks = await audit.verify()
    result["verify_per_s"] = round(records / (time.perf_counter() - begin))
    result["verify_breaks"] = len(breaks)
    await audit.close()
    return result


async def bench_table(connection_string: str, records: int, days: int, single: int) -> dict[str, Any]:
    audit = TableAuditLog(connection_string, "benchaudit", clock=spread_clock(records, days))
    result: dict[str, Any] = {"records": records}
    result.update(await fill(audit, records, min(single, records // 2)))
    result.update(await queries(audit, days))
    result["iterate_per_s"] = await iterate(audit)
    await audit.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="SQLite records (default 100,000)")
    parser.add_argument("--days", type=int, default=30, help="UTC days the records are spread over")
    parser.add_argument("--table-records", type=int, default=5_000, help="Table Storage records (Azurite)")
    parser.add_argument("--single", type=int, default=2_000, help="records appended one by one before the batches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        workdir = Path(tmp)
        sqlite = asyncio.run(bench_sqlite(workdir, args.records, args.days, args.single))
        sqlite["file_mb"] = round(sum(p.stat().st_size for p in workdir.glob("audit.sqlite3*")) / 1e6, 1)
        table = None
        if args.table_records:
            with azurite_process(workdir / "azurite") as azurite:
                table = asyncio.run(bench_table(azurite.connection_string, args.table_records, args.days, min(args.single, 500)))
    print(json.dumps({"records": args.records, "days": args.days, "sqlite": sqlite, "table": table}))


if __name__ == "__main__":
    main()
