"""The simulator in a thread (sync callers), in a child process (benchmarks), and as `janitor simulate`."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import typer
from typer.testing import CliRunner

from janitor_cli import simulate
from simulator import Faults, SimulatorProcess, SimulatorThread, Tenant


def test_thread_serves_sync_clients_and_stops(small_tenant: Tenant) -> None:
    with SimulatorThread(small_tenant, faults=Faults(fail_next_5xx=1)) as sim:
        with httpx.Client(base_url=sim.base_url) as http:
            assert http.get("/devices").status_code == 503
            page = http.get("/devices", params={"$top": "5"}).json()
        assert len(page["value"]) == 5 and sim.stats.requests == 2
        url = sim.base_url
    try:
        httpx.get(url + "/devices", timeout=2)
        raise AssertionError("the server still answers after the block")
    except httpx.TransportError:
        pass


def test_start_simulator_thread_fixture(start_simulator_thread, small_tenant: Tenant) -> None:
    sim = start_simulator_thread(small_tenant)
    assert httpx.get(sim.base_url + "/organization").json()["value"][0]["id"] == small_tenant.tenant_id


def test_process_serves_the_same_tenant_as_the_parent_generates() -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    with SimulatorProcess(devices=150, seed=4, now=now, faults=Faults(latency_ms=1)) as sim:
        ids = [d["id"] for d in httpx.get(sim.base_url + "/devices", params={"$top": "999", "$select": "id"}).json()["value"]]
        assert sim.info["devices"] == 150 and sim.info["rss_mb"] > 0
        process = sim.process
    assert ids == Tenant.generate(devices=150, seed=4, now=now).object_ids()
    assert process is not None and process.poll() is not None


def test_cli_rejects_a_non_loopback_host_and_bad_profile() -> None:
    app = typer.Typer()
    simulate.register(app)
    app.command("noop")(lambda: None)  # keep "simulate" a subcommand
    runner = CliRunner()
    host = runner.invoke(app, ["simulate", "--host", "10.1.2.3", "--devices", "10"])
    profile = runner.invoke(app, ["simulate", "--profile", "chaos", "--devices", "10", "--port", "0"])
    when = runner.invoke(app, ["simulate", "--now", "yesterday", "--devices", "10"])
    assert host.exit_code == profile.exit_code == when.exit_code == 2
    assert "loopback" in host.output and "unknown fleet profile" in profile.output and "ISO 8601" in when.output
