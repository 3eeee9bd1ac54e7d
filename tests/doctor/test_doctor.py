"""`janitor doctor` against the simulator: it names a missing permission and a bad setting, with the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.doctor import Status, exit_code, needed_permissions, optional_permissions, run_checks
from shared.policy import load_policy
from tests.doctor.conftest import FakeCredential

ROOT = Path(__file__).resolve().parents[2]
ENFORCE = "mode: enforce\nnotify:\n  owners: true\n  admins: [secops@contoso.example]\n"


@pytest.fixture
def env(doctor_simulator, tmp_path) -> dict[str, str]:
    """A local deployment pointed at the simulator, embedded queue and audit store, enforce policy with mail."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(ENFORCE)
    return {
        "GRAPH_BASE_URL": doctor_simulator.base_url,
        "GRAPH_AUTH": "default",
        "JANITOR_DATA_DIR": str(tmp_path / "data"),
        "JANITOR_POLICY": str(policy),
        "MAIL_SENDER": "janitor@contoso.example",
    }


def needed(env: dict[str, str]) -> set[str]:
    return set(needed_permissions(load_policy(env["JANITOR_POLICY"]), tickets="WEBHOOK_SECRET" in env))


def optional(env: dict[str, str]) -> set[str]:
    return set(optional_permissions(load_policy(env["JANITOR_POLICY"]), tickets="WEBHOOK_SECRET" in env))


def by_name(results) -> dict:
    return {r.name: r for r in results}


async def test_all_needed_roles_present_means_every_check_passes(env):
    credential = FakeCredential(needed(env) | optional(env))
    results = await run_checks(env, credential=credential)
    failing = [r.line() for r in results if r.status in (Status.FAIL, Status.WARN)]
    assert failing == []
    assert exit_code(results) == 0
    checks = by_name(results)
    assert checks["graph permissions"].status is Status.OK
    assert checks["graph reachable"].status is Status.OK and "listed devices" in checks["graph reachable"].detail
    assert checks["queue reachable"].status is Status.OK and checks["audit store reachable"].status is Status.OK
    assert "none of 0 Conditional Access" in checks["tag attribute vs Conditional Access"].detail
    assert "extensionAttribute15" in checks["tag attribute vs dynamic groups"].detail
    assert "graph least privilege" not in checks  # the optional reads are not "more than needed"
    assert credential.scopes and credential.scopes[0] == ("https://graph.microsoft.com/.default",)
    assert not credential.closed, "a credential the caller passed in is the caller's to close"


async def test_names_the_missing_permission_and_what_needs_it(env):
    roles = needed(env) - {"Device.ReadWrite.All"}
    results = await run_checks(env, credential=FakeCredential(roles))
    check = by_name(results)["graph permissions"]
    assert check.status is Status.FAIL
    assert "Device.ReadWrite.All" in check.detail and "device write: disable" in check.detail
    assert "grant-graph-permissions.py" in check.fix
    assert "Device.ReadWrite.All" in check.line() and "-> fix:" in check.line()
    assert by_name(results)["graph reachable"].status is Status.OK  # reads still work
    assert exit_code(results) == 1


async def test_without_device_read_the_simulator_refuses_and_the_doctor_says_which(env):
    results = await run_checks(env, credential=FakeCredential({"Mail.Send"}))
    checks = by_name(results)
    assert checks["graph permissions"].status is Status.FAIL and "Device.Read.All" in checks["graph permissions"].detail
    reach = checks["graph reachable"]
    assert reach.status is Status.FAIL
    assert "403" in reach.detail and "Device.Read.All" in reach.detail


async def test_a_read_write_grant_covers_the_read_but_is_reported_as_more_than_needed(env, tmp_path):
    report = tmp_path / "report.yaml"
    report.write_text("mode: report\n")
    env |= {"JANITOR_POLICY": str(report)}
    roles = {"Device.ReadWrite.All", "DeviceManagementManagedDevices.Read.All"}
    results = await run_checks(env, credential=FakeCredential(roles))
    checks = by_name(results)
    assert checks["graph permissions"].status is Status.OK
    assert checks["graph least privilege"].status is Status.WARN
    assert "Device.ReadWrite.All" in checks["graph least privilege"].detail
    assert exit_code(results) == 0


async def test_names_bad_settings_one_line_each(env):
    env |= {"GRAPH_WRITE_BUDGET": "lots", "SCAN_SCHEDULE": "0 2 * * *", "JANITOR_KILL_SWITCH": "maybe"}
    results = await run_checks(env, credential=FakeCredential(needed(env)))
    checks = by_name(results)
    budget = checks["setting GRAPH_WRITE_BUDGET"]
    assert budget.status is Status.FAIL and "whole number" in budget.detail and "'lots'" in budget.detail
    assert budget.fix.startswith("set GRAPH_WRITE_BUDGET")
    assert checks["setting SCAN_SCHEDULE"].status is Status.FAIL and "6 fields" in checks["setting SCAN_SCHEDULE"].detail
    assert checks["setting JANITOR_KILL_SWITCH"].status is Status.FAIL
    assert checks["setting GRAPH_MAX_ATTEMPTS"].status is Status.OK
    assert exit_code(results) == 1


async def test_service_bus_without_a_namespace_is_named_and_the_queue_is_not_tried(env):
    env |= {"QUEUE_BACKEND": "servicebus"}
    results = await run_checks(env, credential=FakeCredential(needed(env)))
    checks = by_name(results)
    assert checks["setting SERVICEBUS__fullyQualifiedNamespace"].status is Status.FAIL
    assert checks["queue reachable"].status is Status.SKIP


async def test_a_policy_that_mails_needs_a_sender(env):
    env.pop("MAIL_SENDER")
    results = await run_checks(env, credential=FakeCredential(needed(env)))
    assert by_name(results)["mail sender"].status is Status.FAIL


async def test_an_invalid_policy_is_reported_with_its_path(env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: enforce\nstale:\n  disable_after_days: 7\n")
    results = await run_checks(env, policy_file=str(bad), credential=FakeCredential(needed(env)))
    checks = by_name(results)
    assert checks["setting JANITOR_POLICY"].status is Status.FAIL
    assert "stale.disable_after_days" in checks["setting JANITOR_POLICY"].detail
    assert checks["graph permissions"].status is Status.SKIP


async def test_a_token_for_another_identity_is_caught(env):
    env |= {"AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111"}
    results = await run_checks(env, credential=FakeCredential(needed(env), app_id="22222222-2222-2222-2222-222222222222"))
    check = by_name(results)["graph permissions"]
    assert check.status is Status.FAIL and "AZURE_CLIENT_ID" in check.detail


async def test_a_signed_in_users_token_cannot_show_app_roles(env):
    results = await run_checks(env, credential=FakeCredential([], delegated=True))
    assert by_name(results)["graph permissions"].status is Status.WARN


async def test_an_unresolved_key_vault_reference_fails_and_hides_nothing_secret(env):
    env |= {"WEBHOOK_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/webhook-secret)"}
    results = await run_checks(env, credential=FakeCredential(needed(env)))
    check = by_name(results)["setting WEBHOOK_SECRET"]
    assert check.status is Status.FAIL and "Key Vault Secrets User" in check.detail


async def test_secret_values_are_never_printed(env):
    env |= {"WEBHOOK_SECRET": "s3cr3t-value-that-must-not-leak-0123456789"}
    results = await run_checks(env, credential=FakeCredential(needed(env)))
    assert all("s3cr3t" not in r.line() for r in results)
    assert by_name(results)["setting WEBHOOK_SECRET"].detail == "set (hidden)"


async def test_the_ticket_webhook_adds_its_permissions_when_configured(env):
    env |= {"WEBHOOK_SECRET": "x" * 40}
    roles = needed({k: v for k, v in env.items() if k != "WEBHOOK_SECRET"})
    results = await run_checks(env, credential=FakeCredential(roles))
    check = by_name(results)["graph permissions"]
    assert check.status is Status.FAIL and "Policy.Read.DeviceConfiguration" in check.detail


async def test_service_bus_reachability_opens_links_without_taking_messages(env, amqp_broker):
    env |= {"QUEUE_BACKEND": "servicebus", "SERVICEBUS_CONNECTION_STRING": amqp_broker.connection_string}
    amqp_broker.enqueue("remediation-commands", b"{}", message_id="waiting-1")
    results = await run_checks(env, credential=FakeCredential(needed(env)))
    check = by_name(results)["queue reachable"]
    assert check.status is Status.OK, check.line()
    stored = amqp_broker.queue("remediation-commands").messages
    assert [m.message_id for m in stored] == ["waiting-1"] and stored[0].deliveries == 0 and stored[0].lock_tag is None


async def test_an_unreachable_service_bus_fails_with_the_reason(env):
    dead = "Endpoint=sb://127.0.0.1:9;SharedAccessKeyName=x;SharedAccessKey=eA==;UseDevelopmentEmulator=true"
    env |= {"QUEUE_BACKEND": "servicebus", "SERVICEBUS_CONNECTION_STRING": dead}
    results = await run_checks(env, credential=FakeCredential(needed(env)))
    check = by_name(results)["queue reachable"]
    assert check.status is Status.FAIL and "queue 'remediation-commands'" in check.detail


def test_the_cli_prints_one_line_per_check_and_exits_non_zero(doctor_simulator, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "QUEUE_", "AUDIT_", "JANITOR_"))}
    env |= {"GRAPH_BASE_URL": doctor_simulator.base_url, "GRAPH_AUTH": "anonymous",
            "JANITOR_DATA_DIR": str(tmp_path / "data"), "GRAPH_MAX_ATTEMPTS": "0"}  # fmt: skip
    cli = [sys.executable, "-c", "from janitor_cli import main; main()", "doctor"]
    proc = subprocess.run(cli, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    bad = [line for line in lines if line.startswith("FAIL")]
    assert bad and bad[0].startswith("FAIL  setting GRAPH_MAX_ATTEMPTS: must be at least 1") and "-> fix:" in bad[0]
    assert any(line.startswith("skip  graph permissions: GRAPH_AUTH=anonymous") for line in lines)

    as_json = subprocess.run([*cli, "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    parsed = json.loads(as_json.stdout)
    assert as_json.returncode == 1
    assert {"check": "setting GRAPH_MAX_ATTEMPTS", "status": "FAIL"}.items() <= parsed[[p["check"] for p in parsed].index(
        "setting GRAPH_MAX_ATTEMPTS")].items()
