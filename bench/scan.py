"""Bulk device scan throughput against the raw bound and the naive SDK path: prints one JSON line.

    python bench/scan.py --devices 1000000 [--seed 7] [--naive-sample 5000] [--partitions 16] [--mode scan]
    python bench/scan.py --devices 1000000 --latency-ms 1000 --partitions 16     # mode "latency"

The simulator serves a generated fleet (plus --irregular devices whose deviceId is null or braced) from a
child process (`janitor simulate`), so the numbers and the peak RSS are this process's: the client.

Mode "scan" (no added latency, throttling off) measures
- reader: the scan's read (`PartitionedReader`: --partitions deviceId partitions, --concurrency at once,
  /devices/$count before and after) over all devices through `GraphGateway` (msgraph-sdk request adapter +
  middleware, raw pages decoded with msgspec into `Device` records), run first so `peak_rss_mb` is its peak;
- raw bound: the pages of a serial read (same $select, $top=999, following @odata.nextLink) fetched with
  the same HTTP client library (httpx) and decoded with json.loads, nothing else;
- naive: msgraph-sdk `devices.get()` + PageIterator into kiota Device models, over a sample of devices.
Output keys: devices, partitions, seconds, devices_per_s, raw_devices_per_s, naive_devices_per_s,
ratio_to_raw, speedup_vs_naive, peak_rss_mb. Targets at 1,000,000 devices: ratio_to_raw >= 0.5,
speedup_vs_naive >= 100, peak_rss_mb <= 200, and no more than 20 MB above the figure at 100,000.

Mode "latency" (the default when --latency-ms > 0; Graph's throttling on, at the tenant size's budget)
holds every answer back --latency-ms, +/- --jitter-ms (seeded), as real Graph does, and measures
- serial: the serial read (partitions 1) over its first --serial-pages pages (at least 30);
- partitioned: the scan's read of the whole fleet with --partitions and --concurrency.
Output keys: devices, pages, partitions, concurrency, latency_ms, wall_s, ideal_s (pages / partitions x
latency), serial_devices_per_s, devices_per_s, speedup_vs_serial, ratio_to_ideal (wall_s / ideal_s),
peak_rss_mb, throttled (429s the page requests met), lowest_concurrency, fallback. Targets at 1,000,000
devices, 1 s latency, 16 partitions: speedup_vs_serial >= 10, wall_s <= 1.5 x ideal_s, peak_rss_mb <= 200,
throttled == 0.

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


def plan_of(args: argparse.Namespace) -> Any:
    from shared.scan.partitions import ReadPlan

    return ReadPlan(args.partitions, args.concurrency)


# --------------------------------------------------------------------------- the paths


async def scan_reader(base_url: str, plan: Any) -> tuple[int, int, float, Any]:
    """Devices, pages, seconds and the reader (its gate and report) for the scan's read of the whole fleet."""
    from shared.graph import GraphGateway
    from shared.scan.partitions import PartitionedReader

    tally = [0, 0]

    def discard() -> None:  # a read that did not add up is read again: count only the read the scan acts on
        tally[:] = [0, 0]

    async with GraphGateway(base_url) as gateway:
        gateway.client.devices.to_get_request_information()  # build the SDK client (imports) outside the timing
        reader = PartitionedReader(gateway, plan)
        started = time.perf_counter()
        async for page in reader.pages(discard):
            tally[0] += len(page)
            tally[1] += 1
        return tally[0], tally[1], time.perf_counter() - started, reader


async def scan_serial_sample(base_url: str, pages: int) -> tuple[int, float]:
    """Devices and seconds for the first `pages` pages of the serial read (what partitions 1 does)."""
    from shared.graph import GraphGateway

    count = 0
    async with GraphGateway(base_url) as gateway:
        gateway.client.devices.to_get_request_information()
        started = time.perf_counter()
        async for page in gateway.iter_devices(page_size=PAGE_SIZE):
            count += len(page)
            pages -= 1
            if not pages:
                break
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
    devices, _, seconds, _ = await scan_reader(base_url, plan_of(args))
    peak = peak_rss_mb()  # before the other paths: the figure is the scan's
    raw_devices, raw_seconds = await scan_raw(base_url)
    naive_devices, naive_seconds = await scan_naive(base_url, args.naive_sample)
    expected = args.devices + args.irregular
    if devices != expected or raw_devices != expected:
        raise SystemExit(f"incomplete scan: the reader saw {devices}, raw saw {raw_devices}, expected {expected}")
    devices_per_s = rate(devices, seconds)
    raw_per_s = rate(raw_devices, raw_seconds)
    naive_per_s = rate(naive_devices, naive_seconds)
    return {
        "devices": devices,
        "partitions": args.partitions,
        "seconds": round(seconds, 2),
        "devices_per_s": devices_per_s,
        "raw_devices_per_s": raw_per_s,
        "naive_devices_per_s": naive_per_s,
        "ratio_to_raw": round(devices_per_s / raw_per_s, 3) if raw_per_s else None,
        "speedup_vs_naive": round(devices_per_s / naive_per_s, 1) if naive_per_s else None,
        "peak_rss_mb": peak,
    }


@mode("latency")
async def latency(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    """The partitioned read against the serial one when every answer takes --latency-ms."""
    serial_devices, serial_seconds = await scan_serial_sample(base_url, args.serial_pages)
    devices, pages, seconds, reader = await scan_reader(base_url, plan_of(args))
    peak = peak_rss_mb()
    expected = args.devices + args.irregular
    if devices != expected:
        raise SystemExit(f"incomplete scan: the reader saw {devices}, expected {expected}")
    ideal = pages / args.partitions * args.latency_ms / 1000
    devices_per_s = rate(devices, seconds)
    serial_per_s = rate(serial_devices, serial_seconds)
    return {
        "mode": "latency",
        "devices": devices,
        "pages": pages,
        "partitions": args.partitions,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "jitter_ms": args.jitter_ms,
        "wall_s": round(seconds, 2),
        "ideal_s": round(ideal, 2),
        "serial_devices_per_s": serial_per_s,
        "serial_sample_pages": args.serial_pages,
        "devices_per_s": devices_per_s,
        "speedup_vs_serial": round(devices_per_s / serial_per_s, 1) if serial_per_s else None,
        "ratio_to_ideal": round(seconds / ideal, 3) if ideal else None,
        "peak_rss_mb": peak,
        "throttled": reader.gate.throttled,
        "lowest_concurrency": reader.gate.lowest,
        "fallback": reader.report.fallback if reader.report else None,
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
    parser.add_argument("--partitions", type=int, choices=(1, 16, 256), default=16, help="deviceId partitions")
    parser.add_argument("--concurrency", type=int, default=16, help="partitions read at once (1-32)")
    parser.add_argument("--irregular", type=int, default=16, help="extra devices whose deviceId is not hex-led")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency the simulator adds to every answer")
    parser.add_argument("--jitter-ms", type=float, default=None, help="latency jitter either side (default 10 %%)")
    parser.add_argument("--serial-pages", type=int, default=32, help="pages of the serial sample (latency mode)")
    parser.add_argument("--mode", choices=sorted(MODES), default=None, help="default: latency when --latency-ms > 0")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.naive_sample < 1 or args.irregular < 0:
        parser.error("--devices and --naive-sample must be positive, --irregular not negative")
    if not 1 <= args.concurrency <= 32 or args.serial_pages < 30:
        parser.error("--concurrency must be 1..32 and --serial-pages at least 30")
    args.mode = args.mode or ("latency" if args.latency_ms > 0 else "scan")
    args.jitter_ms = args.latency_ms / 10 if args.jitter_ms is None else args.jitter_ms

    from simulator import Faults, Limits, SimulatorProcess

    faults = Faults(latency_ms=args.latency_ms, latency_jitter_ms=args.jitter_ms, seed=args.seed)
    limits = Limits() if args.mode == "latency" else Limits.off()  # the latency run must not be throttled
    with SimulatorProcess(
        devices=args.devices, seed=args.seed, limits=limits, faults=faults, irregular_device_ids=args.irregular
    ) as simulator:
        result = asyncio.run(MODES[args.mode](args, simulator.base_url))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
