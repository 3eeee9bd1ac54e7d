"""Files generated from the settings table and the permission features stay equal to what the code says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.doctor.platform import LOCAL_HOST_SETTINGS
from shared.doctor.sample import DEPLOY_DOC, SAMPLE_FILE, TABLE_DOCS, sample_settings_text, with_tables
from shared.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `python -m shared.doctor.regenerate` from the repository root and commit the result"


def test_the_committed_sample_settings_equal_what_the_settings_table_produces():
    committed = (ROOT / SAMPLE_FILE).read_text(encoding="utf-8")
    assert committed == sample_settings_text(), f"{SAMPLE_FILE} is out of date: {REGENERATE}"


def test_the_sample_documents_every_setting_with_its_default():
    sample = json.loads(sample_settings_text())
    for setting in SETTINGS:
        assert sample["Values"][setting.name] == (setting.default or "")
        assert sample["Documentation"][setting.name].startswith(setting.help)
    for name, value, _ in LOCAL_HOST_SETTINGS:
        assert sample["Values"][name] == value
    assert sample["IsEncrypted"] is False


def test_the_cli_prints_the_same_sample():
    proc = subprocess.run(
        [sys.executable, "-c", "from janitor_cli import main; main()", "doctor", "--sample-settings"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == sample_settings_text()


@pytest.mark.parametrize("name", TABLE_DOCS)
def test_the_documented_tables_equal_the_generated_ones(name):
    doc = (ROOT / name).read_text(encoding="utf-8")
    assert doc == with_tables(doc), f"the generated tables in {name} are out of date: {REGENERATE}"
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in doc
    assert "| mail device owners | mode: enforce and notify.owners: true |" in doc


def test_refreshing_a_stale_table_changes_it():
    stale = "x\n<!-- settings-table:start -->\n| old |\n<!-- settings-table:end -->\n"
    stale += "<!-- permission-table:start -->\n<!-- permission-table:end -->\n"
    fresh = with_tables(stale)
    assert "| old |" not in fresh and "`SCAN_SCHEDULE`" in fresh and "Device.ReadWrite.All" in fresh


def test_the_deploy_doc_lists_every_telemetry_counter_with_its_attributes():
    from shared.telemetry import METRICS

    doc = (ROOT / DEPLOY_DOC).read_text(encoding="utf-8")
    for metric in METRICS.values():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `janitor.{metric.name}` |")), None)
        assert row is not None, f"docs/deploy.md has no row for janitor.{metric.name}"
        for attribute in metric.attributes:
            assert f"`{attribute}`" in row, f"janitor.{metric.name}: attribute {attribute} not documented"
