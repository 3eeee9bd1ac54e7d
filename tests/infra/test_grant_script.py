"""infra/grant-graph-permissions.py: the plan follows the policy, and a second run changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.bicep import ROOT
from tests.infra.fake_graph_admin import fake_graph_admin

SCRIPT = ROOT / "infra" / "grant-graph-permissions.py"

REPORT_ONLY = "mode: report\n"
ENFORCE_WITH_NOTICES = """\
mode: enforce
notify:
  owners: true
  admins: [secops@contoso.example]
"""


def grant(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def plan(*args: str) -> dict:
    proc = grant(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def policies(tmp_path: Path) -> dict[str, str]:
    files = {"report": REPORT_ONLY, "enforce": ENFORCE_WITH_NOTICES}
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return {name: str(tmp_path / f"{name}.yaml") for name in files}


def test_report_only_plan_reads_devices_and_the_intune_gate_and_nothing_else(policies):
    needed = plan("--policy", policies["report"], "--no-tickets", "--dry-run")["needed"]
    assert needed == ["Device.Read.All", "DeviceManagementManagedDevices.Read.All"]


def test_report_only_plan_with_the_ticket_webhook_adds_only_its_reads(policies):
    needed = plan("--policy", policies["report"], "--dry-run")["needed"]
    assert needed == ["Device.Read.All", "DeviceManagementManagedDevices.Read.All", "GroupMember.Read.All",
                      "Policy.Read.DeviceConfiguration", "User.Read.All"]  # fmt: skip


def test_enforce_plan_with_notifications_adds_writes_gates_and_mail(policies):
    needed = plan("--policy", policies["enforce"], "--no-tickets", "--dry-run")["needed"]
    assert needed == [
        "BitlockerKey.ReadBasic.All",
        "Device.Read.All",
        "Device.ReadWrite.All",
        "DeviceLocalCredential.ReadBasic.All",
        "DeviceManagementManagedDevices.Read.All",
        "Mail.Send",
        "User.Read.All",
    ]


def test_the_optional_doctor_reads_are_listed_and_granted_only_when_asked(policies):
    proc = grant("--policy", policies["report"], "--no-tickets", "--dry-run")
    assert "optional: Policy.Read.All" in proc.stdout and "--with-optional" in proc.stdout
    assert "Policy.Read.All" not in plan("--policy", policies["report"], "--no-tickets", "--dry-run")["needed"]
    needed = plan("--policy", policies["report"], "--no-tickets", "--dry-run", "--with-optional")["needed"]
    assert needed == ["Device.Read.All", "DeviceManagementManagedDevices.Read.All", "Group.Read.All", "Policy.Read.All"]


def test_a_held_optional_read_is_neither_extra_nor_revoked(policies):
    with fake_graph_admin() as directory:
        directory.assign("Policy.Read.All")
        target = ("--principal-id", directory.identity_id, "--graph-url", directory.base_url, "--policy", policies["report"])
        result = plan(*target, "--no-tickets", "--revoke-extra")
        assert result["extra"] == [] and result["revoked"] == []
        assert "Policy.Read.All" in directory.held()


def test_the_printed_plan_names_each_permission_and_why(policies):
    proc = grant("--policy", policies["enforce"], "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "Mail.Send" in proc.stdout and "mail device owners" in proc.stdout and "mail administrators" in proc.stdout
    assert "nothing was read from or written to the tenant" in proc.stdout


def test_grants_missing_roles_then_a_second_run_changes_nothing(policies):
    with fake_graph_admin() as directory:
        directory.assign("Device.Read.All")  # granted earlier by hand
        directory.assign("Directory.Read.All")  # broader than needed
        target = ("--principal-id", directory.identity_id, "--graph-url", directory.base_url, "--policy", policies["enforce"])

        first = grant(*target)
        assert first.returncode == 0, first.stderr
        assert "already granted  Device.Read.All" in first.stdout
        assert "grant            Mail.Send" in first.stdout
        assert "extra            Directory.Read.All" in first.stdout
        posted = [p for m, p in directory.writes() if m == "POST"]
        expected = {"BitlockerKey.ReadBasic.All", "Device.ReadWrite.All", "DeviceLocalCredential.ReadBasic.All",
                    "DeviceManagementManagedDevices.Read.All", "GroupMember.Read.All", "Mail.Send",
                    "Policy.Read.DeviceConfiguration", "User.Read.All"}  # fmt: skip
        assert len(posted) == len(expected)
        assert directory.held() == expected | {"Device.Read.All", "Directory.Read.All"}

        writes_before = len(directory.writes())
        second = json.loads(grant(*target, "--json").stdout)
        assert second["granted"] == [] and len(second["already_granted"]) == len(expected) + 1
        assert len(directory.writes()) == writes_before, "a second run must not write"

        revoked = grant(*target, "--revoke-extra")
        assert revoked.returncode == 0, revoked.stderr
        assert "revoke           Directory.Read.All" in revoked.stdout
        assert "Directory.Read.All" not in directory.held()


def test_dry_run_against_the_tenant_reads_but_never_writes(policies):
    with fake_graph_admin() as directory:
        result = plan("--client-id", directory.identity_app_id, "--graph-url", directory.base_url,
                      "--policy", policies["report"], "--dry-run", "--revoke-extra")  # fmt: skip
        report_needs = ["Device.Read.All", "DeviceManagementManagedDevices.Read.All", "GroupMember.Read.All",
                        "Policy.Read.DeviceConfiguration", "User.Read.All"]  # fmt: skip
        assert result["granted"] == report_needs
        assert directory.writes() == [] and directory.held() == set()


def test_a_bad_policy_is_refused_with_its_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: enforce\nstale:\n  disable_after_days: 7\n")
    proc = grant("--policy", str(bad), "--dry-run")
    assert proc.returncode == 2
    assert "stale.disable_after_days" in proc.stderr


def test_writing_without_naming_the_identity_is_refused(policies):
    proc = grant("--policy", policies["report"])
    assert proc.returncode == 2 and "--principal-id" in proc.stderr
