"""checkov (its own venv under tools/, installed by `make test`) passes on infra/, every skip justified."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.infra.bicep import INFRA, ROOT, bicep_files

CHECKOV = ROOT / "tools" / "checkov" / "bin" / "checkov"
SKIP = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
MIN_JUSTIFICATION = 40  # characters: a reason a reviewer can weigh, not "n/a"


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make test` (it builds tools/checkov from tools/requirements-checkov.txt)")
    proc = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--skip-download", "--directory", str(INFRA), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}")
    report = report[0] if isinstance(report, list) else report
    report["returncode"] = proc.returncode
    return report


def test_checkov_passes_on_every_template(checkov_report):
    summary = checkov_report["summary"]
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in checkov_report["results"].get("failed_checks", [])]
    assert failed == [] and summary["failed"] == 0, f"checkov failures: {failed}"
    assert summary["parsing_errors"] == 0
    assert checkov_report["returncode"] == 0
    scanned = {c["file_path"].lstrip("/") for c in checkov_report["results"]["passed_checks"]}
    assert {"modules/storage.bicep", "modules/functionapp.bicep", "modules/keyvault.bicep"} <= scanned
    assert summary["passed"] >= 20


def _skip_comments() -> list[tuple[str, str, str]]:
    found = []
    for path in bicep_files():
        for match in SKIP.finditer(path.read_text()):
            found.append((path.relative_to(INFRA).as_posix(), match.group(1), (match.group(2) or "").strip()))
    return found


def test_every_skip_is_justified_in_the_bicep():
    for path, check, reason in _skip_comments():
        assert len(reason) >= MIN_JUSTIFICATION, f"{path}: checkov:skip={check} needs a justification after the colon"


def test_every_skip_is_one_checkov_applies(checkov_report):
    """A skip comment checkov does not use is stale (or misplaced outside the resource body): remove it."""
    applied = {(c["file_path"].lstrip("/"), c["check_id"]) for c in checkov_report["results"].get("skipped_checks", [])}
    written = {(path, check) for path, check, _ in _skip_comments()}
    assert written == applied
