"""Undo of an enforce run in the demo fleet, through the CLI as an administrator runs it: `janitor run`, then
`janitor undo --dry-run`, `janitor undo`, `janitor work`, `janitor audit list --decision undone` and `janitor
audit verify`. Every device the run disabled (or tagged) that nobody touched since is put back, the others are
skipped with the reason; cloud devices it deleted come back from deleted items, hybrid ones are refused with
the on-premises steps; every undo is in the hash chain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from janitor_cli import _register_all as register_cli
from janitor_cli import app
from shared import bootstrap, tags
from shared.ports import AuditQuery, AuditRecord
from simulator import SimulatorThread, Tenant

DEVICES = 900
SEED = 23


@dataclass
class Run:
    tenant: Tenant
    run_id: str
    disabled: list[str]
    tagged: list[str]
    deleted: list[str]
    path: Path


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def _records(**query: Any) -> list[AuditRecord]:
    audit = bootstrap.audit_log()
    try:
        return [r async for r in audit.iter_records(AuditQuery(**query))]
    finally:
        await audit.close()


def records(**query: Any) -> list[AuditRecord]:
    return asyncio.run(_records(**query))


@pytest.fixture(scope="module", autouse=True)
def commands_registered() -> None:
    register_cli()


@pytest.fixture
def night(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """An enforce night on a fresh demo fleet (ages from the real clock, as `janitor run` measures them)."""
    tenant = Tenant.generate(devices=DEVICES, seed=SEED)
    policy = tenant.reference_policy() | {"mode": "enforce"}
    policy["pending"] = {"stuck_after_days": 14, "action": "delete"}  # opt-in: hybrid objects get deleted too
    policy["limits"] = {"max_destructive_per_run": 10_000, "max_destructive_fraction": 0.5, "max_destructive_per_day": 10_000}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    with SimulatorThread(tenant) as sim:
        monkeypatch.setenv("GRAPH_BASE_URL", sim.base_url)
        monkeypatch.setenv("GRAPH_AUTH", "anonymous")
        monkeypatch.setenv("JANITOR_POLICY", str(path))
        scan = json.loads(cli("run", "--json").stdout)["scan"]
        acted = [r.entry for r in records(run_id=scan["run_id"], kind="decision", decision="acted")]
        by_action = {a: [e.device_object_id or "" for e in acted if e.action == a] for a in ("disable", "tag", "delete")}
        yield Run(tenant, scan["run_id"], by_action["disable"], by_action["tag"], by_action["delete"], path)


def test_undo_puts_back_what_nobody_touched_and_skips_the_rest_with_reasons(night: Run) -> None:
    tenant, run_id = night.tenant, night.run_id
    assert len(night.disabled) >= 10 and night.tagged and night.deleted
    # someone acts on a few devices before the undo
    enabled_by_admin, overwritten, later_run, gone = night.disabled[:4]
    tenant.update_device(enabled_by_admin, accountEnabled=True)
    tenant.update_device(overwritten, extensionAttributes={**_ext(tenant, overwritten), "extensionAttribute15": "finance"})
    later = tags.Tag("disabled", datetime.now(UTC), "stale", "run-later").render()
    tenant.update_device(later_run, extensionAttributes={**_ext(tenant, later_run), "extensionAttribute15": later})
    tenant.delete_device(gone)
    changed = {enabled_by_admin, overwritten, later_run, gone}
    untouched = [oid for oid in night.disabled if oid not in changed]
    hybrid = {oid for oid in night.deleted if _trust(tenant, oid) == "ServerAd"}
    cloud = [oid for oid in night.deleted if oid not in hybrid]
    assert hybrid and cloud

    preview = {line["device_id"]: line for line in _lines(cli("undo", "--run-id", run_id, "--dry-run", "--json").stdout, tenant)}
    assert {preview[oid]["status"] for oid in untouched} == {"would reenable"}
    assert {preview[oid]["status"] for oid in changed} == {"skipped"}
    assert "changed since" in preview[overwritten]["reason"] and "run-later" in preview[later_run]["reason"]
    assert all(preview[oid]["status"] == "would restore" for oid in cloud)
    assert all("not restorable in Entra" in preview[oid]["reason"] for oid in hybrid)
    assert records(kind="undo") == [] and tenant.device_json(untouched[0])["accountEnabled"] is False  # wrote nothing

    queued = _lines(cli("undo", "--run-id", run_id, "--json", "--by", "admin@contoso.test").stdout, tenant)
    assert {line["status"] for line in queued} == {"queued"}
    assert len(queued) == len(night.disabled) + len(night.tagged) + len(night.deleted)
    cli("work")

    for oid in untouched:
        device = tenant.device_json(oid)
        assert device["accountEnabled"] is True and device["extensionAttributes"]["extensionAttribute15"] is None, oid
    for oid in night.tagged:
        assert tenant.device_json(oid)["extensionAttributes"]["extensionAttribute15"] is None
    for oid in cloud:
        restored = tenant.device_json(oid)
        assert restored is not None and restored["isCompliant"] is False
    assert all(tenant.device_json(oid) is None for oid in hybrid)
    assert tenant.device_json(enabled_by_admin)["accountEnabled"] is True  # left as the admin made it
    assert tenant.device_json(overwritten)["extensionAttributes"]["extensionAttribute15"] == "finance"
    assert tenant.device_json(later_run)["extensionAttributes"]["extensionAttribute15"] == later

    decisions = {r.entry.device_object_id: r.entry for r in records(run_id=f"undo-{run_id}", kind="decision")}
    assert "enabled again" in decisions[enabled_by_admin].reason
    assert decisions[overwritten].decision == "blocked" and "finance" in decisions[overwritten].reason  # tag ownership
    assert "run-later" in decisions[later_run].reason and "no longer exists" in decisions[gone].reason
    assert all("Active Directory Recycle Bin" in decisions[oid].reason for oid in hybrid)

    undone = json_lines(cli("audit", "list", "--run-id", run_id, "--decision", "undone", "--json", "--limit", "1000").stdout)
    expected = set(untouched) | set(night.tagged) | set(cloud)
    assert {line["device_object_id"] for line in undone} == expected
    assert "audit log intact" in cli("audit", "verify").stdout

    report = night.path.parent / "report.html"
    cli("audit", "report", "--out", str(report))
    html = report.read_text()
    section = html.split('<section id="undo-keep">', 1)[1].split("</section>", 1)[0]
    assert section.count(">undone<") == len(expected) and section.count(">undo requested<") == len(queued)
    assert "undo decided: reenable acted" in section and "admin@contoso.test" in section
    run_card = html.split(f'<h3 class="mono">{run_id}</h3>', 1)[1].split("</header>", 1)[0]
    assert '<span class="badge dry_run">undone</span>' in run_card and f"{len(untouched)} disable" in run_card

    again = _lines(cli("undo", "--run-id", run_id, "--json").stdout, tenant)  # nothing is put back twice
    assert {line["device_id"] for line in again if line["status"] == "already undone"} == expected


def _ext(tenant: Tenant, oid: str) -> dict[str, Any]:
    return dict(tenant.device_json(oid)["extensionAttributes"])


def _trust(tenant: Tenant, oid: str) -> str:
    index = tenant.devices.find(oid, include_deleted=True)
    assert index is not None
    return tenant.devices.profile_fields(index)["trustType"]


def _lines(stdout: str, tenant: Tenant) -> list[dict[str, Any]]:
    """The CLI's JSON lines, keyed for the test by the device's object id."""
    del tenant
    return [{**line, "device_id": line["object_id"]} for line in json_lines(stdout)]


def test_nothing_to_undo_for_an_unknown_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_AUTH", "anonymous")
    monkeypatch.setenv("GRAPH_BASE_URL", "http://127.0.0.1:9/v1.0")  # never reached: the run has no writes
    result = CliRunner().invoke(app, ["undo", "--run-id", "run-that-never-was", "--dry-run"])
    assert result.exit_code == 0 and "nothing to undo" in result.stderr
