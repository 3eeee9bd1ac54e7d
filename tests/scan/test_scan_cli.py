"""`janitor scan`: one JSON object with --json, a readable summary otherwise, a bad policy named by path."""

from __future__ import annotations

import json

import pytest
import typer
import yaml
from typer.testing import CliRunner

from janitor_cli import scan as scan_cli
from simulator import SimulatorThread, Tenant

KEYS = ["run_id", "devices_scanned", "findings", "commands_enqueued", "halted", "halt_reason"]


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant.generate(devices=1_500, seed=5)  # ages from the real clock, like the CLI's scan


@pytest.fixture
def cli(tenant, tmp_path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(tenant.reference_policy()))
    app = typer.Typer()
    scan_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)
    with SimulatorThread(tenant) as sim:
        monkeypatch.setenv("GRAPH_BASE_URL", sim.base_url)
        monkeypatch.setenv("GRAPH_AUTH", "anonymous")
        yield app, policy


def test_json_output_is_exactly_one_object_with_the_documented_keys(cli, tenant):
    app, policy = cli
    result = CliRunner().invoke(app, ["scan", "--policy", str(policy), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # the whole of stdout is one JSON value
    assert list(document) == KEYS
    assert document["devices_scanned"] == 1_500 and document["findings"] == tenant.truth.class_counts()
    assert document["halted"] is False and document["halt_reason"] is None and document["commands_enqueued"] > 0


def test_plain_output_is_a_readable_summary(cli):
    app, policy = cli
    result = CliRunner().invoke(app, ["scan", "--policy", str(policy)])
    assert result.exit_code == 0, result.output
    for text in ("healthy", "stale", "duplicate", "devices scanned", "1,500", "commands queued", "Proposed actions"):
        assert text in result.stdout


def test_invalid_policy_stops_before_scanning_with_the_path(cli, tmp_path):
    app, _ = cli
    bad = tmp_path / "bad.yaml"
    bad.write_text("stale:\n  disable_after_days: 14\n")
    result = CliRunner().invoke(app, ["scan", "--policy", str(bad), "--json"])
    assert result.exit_code == 2
    assert "stale.disable_after_days: 14 is below the minimum 30" in result.output and result.stdout == ""
