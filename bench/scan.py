"""Bulk device scan throughput against the raw bound and the naive SDK path: prints one JSON line.

    python bench/scan.py --devices 1000000 [--seed 7] [--naive-sample 5000] [--mode scan]

The simulator serves a generated fleet from a child process (`janitor simulate`, throttling off), so the
numbers and the peak RSS are this process's: the client. One run measures
- gateway: `GraphGateway.iter_devices()` over all N devices (msgraph-sdk request adapter + middleware, raw
  pages decoded with msgspec into `Device` records), run first so `peak_rss_mb` is the scan's own peak;
- raw bound: the same pages (same $select, $top=999, following @odata.nextLink) fetched with the same HTTP
  client library (httpx) and decoded with json.loads, nothing else;
- naive: msgraph-sdk `devices.get()` + PageIterator into kiota Device models, over a sample of devices.

Output keys: devices, seconds, devices_per_s, raw_devices_per_s, naive_devices_per_s, ratio_to_raw,
speedup_vs_naive, peak_rss_mb. Targets at 1,000,000 devices: ratio_to_raw >= 0.5, speedup_vs_naive >= 100,
peak_rss_mb <= 200, and no more than 20 MB above the figure at 100,000.

Other modes register with `@mode("name")`: a coroutine taking (args, base_url) and returning the dict to print.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.models import DEVICE_SELECT  # noqa: E402

type Mode = Callable[[argparse.Namespace, str], Awaitable[dict[str, Any]]]
MODES: dict[str, Mode] = {}
PAGE_SIZE = 999


def mode(name: str) -> Callable[[Mode], Mode]:
    """Register a benchmark mode (selected with --mode)."""

    def register(run: Mode) -> Mode:
        MODES[name] = run
        return run

    return register


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


# --------------------------------------------------------------------------- the three paths


async def scan_gateway(base_url: str) -> tuple[int, float]:
    """Devices and seconds for `iter_devices()` over the whole fleet."""
    from shared.graph import GraphGateway

    count = 0
    async with GraphGateway(base_url) as gateway:
        gateway.client.devices.to_get_request_information()  # build the SDK client (imports) outside the timing
        started = time.perf_counter()
        async for page in gateway.iter_devices(page_size=PAGE_SIZE):
            count += len(page)
        return count, time.perf_counter() - started


async def scan_raw(base_url: str) -> tuple[int, float]:
    """Devices and seconds for fetching the same pages with httpx and json.loads-ing them, nothing else."""
    import httpx

    count = 0
    first = httpx.URL(f"{base_url}/devices", params={"$select": ",".join(DEVICE_SELECT), "$top": str(PAGE_SIZE)})
    async with httpx.AsyncClient(timeout=100) as client:
        started = time.perf_counter()
        url: str | httpx.URL | None = first
        while url:
            response = await client.get(url)
            response.raise_for_status()
            page = json.loads(response.content)
            count += len(page["value"])
            url = page.get("@odata.nextLink")
        return count, time.perf_counter() - started


async def scan_naive(base_url: str, sample: int) -> tuple[int, float]:
    """Devices and seconds for msgraph-sdk's own path (kiota models + PageIterator) over `sample` devices."""
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder
    from msgraph_core.tasks.page_iterator import PageIterator

    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = base_url
    client = GraphServiceClient(request_adapter=adapter)
    query = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(select=list(DEVICE_SELECT), top=PAGE_SIZE)
    count = 0

    def take(_device: object) -> bool:
        nonlocal count
        count += 1
        return count < sample

    started = time.perf_counter()
    first = await client.devices.get(RequestConfiguration(query_parameters=query))
    await PageIterator(first, adapter).iterate(take)  # the factory is the first page's type
    seconds = time.perf_counter() - started
    await adapter._http_client.aclose()
    return count, seconds


# --------------------------------------------------------------------------- modes


@mode("scan")
async def scan(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    devices, seconds = await scan_gateway(base_url)
    peak = peak_rss_mb()  # before the other paths: the figure is the scan's
    raw_devices, raw_seconds = await scan_raw(base_url)
    naive_devices, naive_seconds = await scan_naive(base_url, args.naive_sample)
    if devices != args.devices or raw_devices != args.devices:
        raise SystemExit(f"incomplete scan: gateway saw {devices}, raw saw {raw_devices}, expected {args.devices}")
    devices_per_s = rate(devices, seconds)
    raw_per_s = rate(raw_devices, raw_seconds)
    naive_per_s = rate(naive_devices, naive_seconds)
    return {
        "devices": devices,
        "seconds": round(seconds, 2),
        "devices_per_s": devices_per_s,
        "raw_devices_per_s": raw_per_s,
        "naive_devices_per_s": naive_per_s,
        "ratio_to_raw": round(devices_per_s / raw_per_s, 3) if raw_per_s else None,
        "speedup_vs_naive": round(devices_per_s / naive_per_s, 1) if naive_per_s else None,
        "peak_rss_mb": peak,
    }


@mode("pipeline")
async def pipeline(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    """The nightly scan's whole pipeline (classification, duplicate spill, breaker, every command enqueued to the
    embedded queue) against the raw bound; see bench/scan_pipeline.py, which also checks the ground truth."""
    from datetime import UTC, datetime

    from scan_pipeline import bench_policy, measure  # bench/ is this script's folder

    result = await measure(base_url, bench_policy(), datetime.now(UTC))  # this simulator's fleet is aged from now
    result.pop("findings")
    return {"mode": "pipeline", **result}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000, help="fleet size the simulator generates")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-sample", type=int, default=5_000, help="devices read through kiota models")
    parser.add_argument("--mode", choices=sorted(MODES), default="scan")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.naive_sample < 1:
        parser.error("--devices and --naive-sample must be positive")

    from shared.simulator import Limits, SimulatorProcess

    with SimulatorProcess(devices=args.devices, seed=args.seed, limits=Limits.off()) as simulator:
        result = asyncio.run(MODES[args.mode](args, simulator.base_url))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
