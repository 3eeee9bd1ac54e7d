"""The whole pipeline under faults, then its invariants: `python bench/chaos.py --json`.

    python bench/chaos.py [--devices 1500] [--workers 3] [--random-kills 3] [--seed 11] [--backend sqlite|azure] [--json]

Runs tests/chaos/harness.py (the run the CI chaos test makes, at the size given): the nightly scan and
several worker processes against the simulator with 10 % 5xx, 429 storms with Retry-After, added
latency, SIGKILLed workers (at random and inside the intent -> write and write -> outcome windows),
duplicate deliveries, poison messages and the audit store locked for a while; with --backend azure, on
Service Bus (the loopback AMQP test broker) and Table Storage (Azurite) instead of the embedded stores.
Prints the report (JSON with --json) and exits 1 when an invariant broke. Bigger sizes than the CI one are
for this script only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.chaos.harness import ChaosConfig, run_chaos  # noqa: E402


def parse_args(argv: list[str] | None = None) -> tuple[ChaosConfig, bool, Path | None]:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=defaults.devices)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--profile", default=defaults.profile, choices=("mixed", "stale20", "clean"))
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="commands per worker at once")
    parser.add_argument("--random-kills", type=int, default=defaults.random_kills)
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate_5xx, help="fraction of requests answered 5xx")
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
    parser.add_argument("--audit-outage", type=float, default=defaults.audit_outage_s, help="seconds the audit file is locked")
    parser.add_argument("--lock-seconds", type=float, default=defaults.lock_seconds, help="peek-lock of the embedded queue")
    parser.add_argument("--duplicates", type=int, default=defaults.duplicates)
    parser.add_argument("--backend", default=defaults.backend, choices=("sqlite", "azure"),
                        help="sqlite: embedded queue and SQLite stores; azure: Service Bus (loopback AMQP broker) and "
                             "Table audit log, budget and leases (Azurite); no audit outage is injected there")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s)
    parser.add_argument("--workdir", type=Path, help="keep the run's files (queue, audit log, worker logs) here")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.devices < 1:
        parser.error("--workers and --devices must be at least 1")
    config = dataclasses.replace(
        defaults,
        devices=args.devices,
        seed=args.seed,
        profile=args.profile,
        workers=args.workers,
        concurrency=args.concurrency,
        random_kills=args.random_kills,
        error_rate_5xx=args.error_rate,
        latency_ms=args.latency_ms,
        lock_seconds=args.lock_seconds,
        duplicates=args.duplicates,
        timeout_s=args.timeout,
        backend=args.backend,
        audit_outage_s=args.audit_outage if args.backend == "sqlite" else 0.0,
    )
    return config, args.json, args.workdir


def main(argv: list[str] | None = None) -> int:
    config, as_json, workdir = parse_args(argv)
    if workdir is not None:
        report = asyncio.run(run_chaos(config, workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="janitor-chaos-") as tmp:
            report = asyncio.run(run_chaos(config, Path(tmp)))
    if as_json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
