"""`janitor simulate`: serve a seeded, simulated Graph tenant on loopback until interrupted.

Prints one JSON line when ready (base_url, devices, class counts, generation time, memory) so scripts and
`SimulatorProcess` can read where it listens. Also runnable as `python -m janitor_cli.simulate`.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from janitor_cli._common import fail


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def simulate(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8080,
    devices: Annotated[int, typer.Option(help="Number of devices to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the generated fleet.")] = 7,
    profile: Annotated[str, typer.Option(help="mixed | stale20 (20 % stale) | clean (nothing to do).")] = "mixed",
    now: Annotated[str | None, typer.Option(help="Reference time (ISO 8601, UTC); default: now.")] = None,
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    no_throttle: Annotated[bool, typer.Option("--no-throttle", help="Turn Graph throttling off.")] = False,
    write_budget: Annotated[int | None, typer.Option(help="Writes per window (default 3000).")] = None,
    write_window: Annotated[float | None, typer.Option(help="Write window in seconds (default 150).")] = None,
    units_per_10s: Annotated[int | None, typer.Option(help="Resource units per 10 s (default: by tenant size).")] = None,
    latency_ms: Annotated[float, typer.Option(help="Latency added to every request.")] = 0.0,
    latency_jitter_ms: Annotated[float, typer.Option(help="Latency varies this much either side (seeded).")] = 0.0,
    irregular_device_ids: Annotated[
        int, typer.Option(min=0, help="Extra devices whose deviceId is null or braced (not hex).")
    ] = 0,
    error_rate: Annotated[float, typer.Option(help="Fraction of requests answered 503.")] = 0.0,
    storm_429: Annotated[float, typer.Option(help="Fraction of requests answered 429.")] = 0.0,
    join_policy: Annotated[str, typer.Option(help="Entra join allowed for: all | selected | none.")] = "selected",
    limits_json: Annotated[str | None, typer.Option(hidden=True)] = None,
    faults_json: Annotated[str | None, typer.Option(hidden=True)] = None,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="Stop when this process is gone.")] = None,
) -> None:
    """Serve a simulated Graph v1.0 tenant (devices, users, groups, policy, BitLocker, Intune, mail, $batch)."""
    from shared.settings import is_loopback_host
    from simulator import Faults, Limits, Tenant, run_simulator

    if not is_loopback_host(host):
        raise fail(f"--host must be a loopback address (the simulator accepts anonymous writes), not {host!r}")
    if join_policy not in ("all", "selected", "none"):
        raise fail(f"--join-policy must be all, selected or none, not {join_policy!r}")
    try:
        moment = datetime.fromisoformat(now.replace("Z", "+00:00")) if now else None
    except ValueError:
        raise fail(f"--now must be an ISO 8601 timestamp such as 2025-06-01T00:00:00Z, not {now!r}") from None
    limits = Limits(**json.loads(limits_json)) if limits_json else Limits()
    if no_throttle:
        limits = Limits.off()
    overrides: dict[str, Any] = {}
    if write_budget is not None:
        overrides["write_budget"] = write_budget
    if write_window is not None:
        overrides["write_window_s"] = write_window
    if units_per_10s is not None:
        overrides["resource_units_per_10s"] = units_per_10s
    if overrides:
        limits = Limits(
            **{**{f: getattr(limits, f) for f in ("resource_units_per_10s", "write_budget", "write_window_s")}, **overrides}
        )
    faults = Faults(**json.loads(faults_json)) if faults_json else Faults()
    faults.latency_ms = latency_ms or faults.latency_ms
    faults.latency_jitter_ms = latency_jitter_ms or faults.latency_jitter_ms
    faults.error_rate_5xx = error_rate or faults.error_rate_5xx
    faults.storm_429 = storm_429 or faults.storm_429
    started, started_cpu = time.perf_counter(), time.process_time()
    try:
        tenant = Tenant.generate(devices=devices, seed=seed, now=moment, profile=profile, join_policy=join_policy)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc)) from None
    if irregular_device_ids:
        from simulator.irregular import add_irregular_devices

        add_irregular_devices(tenant, irregular_device_ids)
    generated, generated_cpu = time.perf_counter() - started, time.process_time() - started_cpu

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        async def watch_parent(pid: int) -> None:  # a benchmark that dies must not leave its server behind
            while True:
                await asyncio.sleep(1)
                if os.getppid() != pid:
                    stop.set()
                    return

        watcher = asyncio.create_task(watch_parent(parent_pid)) if parent_pid is not None else None
        try:
            async with run_simulator(tenant, limits=limits, faults=faults, port=port, host=host) as sim:
                print(
                    json.dumps(
                        {
                            "base_url": sim.base_url,
                            "devices": tenant.device_count,
                            "seed": seed,
                            "profile": profile,
                            "now": tenant.now.isoformat().replace("+00:00", "Z"),
                            "generated_s": round(generated, 2),
                            "generated_cpu_s": round(generated_cpu, 2),
                            "rss_mb": _rss_mb(),
                            "admin_upn": tenant.admin_upn,
                            "sender_upn": tenant.sender_upn,
                            "protected_group_id": tenant.protected_group_id,
                            "class_counts": tenant.truth.class_counts(),
                        }
                    ),
                    flush=True,
                )
                await stop.wait()
                if watcher is not None:
                    watcher.cancel()
                print(json.dumps({"stats": sim.stats.snapshot()}), file=sys.stderr, flush=True)
        except OSError as exc:
            raise fail(str(exc)) from None

    asyncio.run(serve())


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


if __name__ == "__main__":
    standalone = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    standalone.command()(simulate)
    standalone()
