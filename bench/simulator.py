"""Simulator capacity: generation time and memory for N devices, and how fast it serves pages.

    python bench/simulator.py --devices 1000000

The simulator runs in its own process (as `janitor simulate`), so the measured client (a bare keep-alive
HTTP connection that reads each page's bytes and finds its nextLink, nothing more) does not share a GIL
with it. Prints one JSON line: generation seconds (wall and CPU), the server's RSS after generation and
after serving, and pages/s + devices/s + MB/s for full scans with the scan's $select (DEVICE_SELECT), with
the default properties, and with a server-side $filter.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.models import DEVICE_SELECT
from simulator import Limits, SimulatorProcess

_NEXT = re.compile(rb'"@odata\.nextLink":"([^"]+)"')


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scan(base_url: str, query: str, server_pid: int) -> dict[str, float]:
    """Follow nextLink over one keep-alive connection; count pages, devices and bytes.

    Also reports the CPU seconds the server and this client spent: on a shared machine, devices per
    server-CPU-second says what the simulator can serve when it has a core to itself.
    """
    parts = urlsplit(base_url)
    server_cpu, client_cpu = _cpu_s(server_pid), time.process_time()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    path: str | None = f"{parts.path}/devices?{query}"
    pages = devices = size = 0
    started = time.perf_counter()
    while path:
        conn.request("GET", path, headers={"ConsistencyLevel": "eventual"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {body[:300]!r}")
        pages += 1
        size += len(body)
        devices += body.count(b'"deviceId":') or body.count(b'"id":')
        found = _NEXT.search(body, 0, 4096)
        path = urlsplit(found.group(1).decode()).path + "?" + urlsplit(found.group(1).decode()).query if found else None
    seconds = time.perf_counter() - started
    server_cpu, client_cpu = _cpu_s(server_pid) - server_cpu, time.process_time() - client_cpu
    conn.close()
    return {
        "pages": pages,
        "devices": devices,
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 1),
        "devices_per_s": round(devices / seconds),
        "mb_per_s": round(size / seconds / 1e6, 1),
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "devices_per_server_cpu_s": round(devices / server_cpu) if server_cpu else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    select = quote(",".join(DEVICE_SELECT), safe=",")
    with SimulatorProcess(devices=args.devices, seed=args.seed, limits=Limits.off()) as sim:
        rss_generated = _status_mb(sim.pid, "VmRSS")
        full = scan(sim.base_url, f"$top=999&$select={select}", sim.pid)
        default = scan(sim.base_url, "$top=999", sim.pid)
        where = quote("accountEnabled eq true and trustType eq 'AzureAd'")
        filtered = scan(sim.base_url, f"$top=999&$select={select}&$filter={where}", sim.pid)
        result = {
            "devices": args.devices,
            "generation_s": sim.info["generated_s"],
            "generation_cpu_s": sim.info["generated_cpu_s"],
            "server_rss_after_generation_mb": rss_generated,
            "server_rss_after_scans_mb": _status_mb(sim.pid, "VmRSS"),
            "server_peak_rss_mb": _status_mb(sim.pid, "VmHWM"),
            "full_select": full,
            "default_select": default,
            "filtered": filtered,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
