"""`janitor dsregcmd FILE [--json]` and `janitor diagnose DEVICE [--dsregcmd FILE] [--user UPN] [--json]`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from janitor_cli import diagnose as diagnose_cli
from simulator import SimulatorThread, Tenant
from tests.diagnosis.fakes import FIXTURES, TENANT_ID, fixture


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    diagnose_cli.register(app)
    return app


def test_dsregcmd_json_is_keyed_by_the_tools_field_names(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["dsregcmd", str(FIXTURES / "win10_hybrid_discovery_failed.txt"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["AzureAdJoined"] == "NO" and doc["DomainJoined"] == "YES" and doc["DRS Discovery Test"].startswith("FAIL")
    assert {c["code"] for c in doc["ErrorCodes"]} >= {"0x801c0021", "0x80072ee2"}


def test_dsregcmd_text_summary(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["dsregcmd", str(FIXTURES / "win11_prt_missing.txt")])
    assert result.exit_code == 0
    assert "join type : entra_joined" in result.stdout and "0xc000006d" in result.stdout


@pytest.mark.parametrize("content", [b"", b"not dsregcmd output at all", b"\x00\x01\x02\x03" * 50, b'{"AzureAdJoined": "YES"}'])
def test_dsregcmd_unparseable_input_exits_2_with_a_clear_error(app: typer.Typer, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    result = CliRunner().invoke(app, ["dsregcmd", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.output and ("dsregcmd" in result.output or "binary" in result.output)


def test_dsregcmd_missing_file_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dsregcmd", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_diagnose_against_the_simulator(app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = Tenant.generate(devices=100, seed=41)
    owner = tenant.users[4]
    oid = tenant.add_device(
        display_name="DESKTOP-PRT0001",
        expected_class="healthy",
        owner=owner.id,
        last_sign_in=tenant.now - timedelta(days=1),
        registered_at=tenant.now - timedelta(days=99),
    )
    local = tmp_path / "status.txt"
    text = fixture("win11_prt_missing.txt").replace("1e3a5c7e-9b1d-4f3a-8c5e-7b9d1f3a5c7e", tenant.device_json(oid)["deviceId"])
    local.write_text(text.replace(TENANT_ID, tenant.tenant_id), encoding="utf-16")  # as PowerShell saves it
    with SimulatorThread(tenant) as sim:
        monkeypatch.setenv("GRAPH_BASE_URL", sim.base_url)
        monkeypatch.setenv("GRAPH_AUTH", "anonymous")
        monkeypatch.setenv("AZURE_TENANT_ID", tenant.tenant_id)
        as_json = CliRunner().invoke(app, ["diagnose", "DESKTOP-PRT0001", "--dsregcmd", str(local), "--json"])
        text_out = CliRunner().invoke(app, ["diagnose", oid, "--dsregcmd", str(local), "--user", owner.user_principal_name])
        missing = CliRunner().invoke(app, ["diagnose", "NOT-A-DEVICE"])
        bad_file = CliRunner().invoke(app, ["diagnose", "DESKTOP-PRT0001", "--dsregcmd", str(tmp_path / "none.txt")])
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["stage"] == 5 and doc["device"]["id"] == oid and doc["user"] == owner.user_principal_name
    assert text_out.exit_code == 0 and text_out.stdout.startswith("stage 5:")
    assert (
        "next step:" in text_out.stdout
        and "evidence:" in text_out.stdout
        and "0xc000006d STATUS_LOGON_FAILURE" in text_out.stdout
    )
    assert missing.exit_code == 0 and missing.stdout.startswith("stage 4:") and "needs_evidence" in missing.stdout
    assert bad_file.exit_code == 2
