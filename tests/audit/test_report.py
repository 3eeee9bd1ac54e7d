"""The review report: what it aggregates, that it is self-contained and escaped, and how Chromium renders it."""

from __future__ import annotations

import re
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from shared.audit import SqliteAuditLog
from shared.audit.chain import GENESIS, normalize_entry, seal
from shared.audit.filters import AuditRequest
from shared.audit.report_html import render
from shared.audit.report_model import ReportBuilder, VerifyResult
from shared.audit.review import build_report
from shared.ports import AuditEntry, AuditQuery, ChainBreak
from tests.audit.conftest import START, StepClock, fill, sample_entries

NOW = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)


def _records(entries: list[AuditEntry]) -> list:
    out, prev = [], GENESIS
    for i, entry in enumerate(entries):
        record = seal("2025-03-01", i + 1, START + timedelta(minutes=7 * i), normalize_entry(entry), prev)
        out.append(record)
        prev = record.hash
    return out


def test_model_counts_runs_classes_decisions_and_joins_outcomes() -> None:
    data = ReportBuilder(generated_at=NOW).add_all(_records(sample_entries())).build(VerifyResult([], 30, 1))
    assert [run.run_id for run in data.runs] == ["run-0301", "run-0302"]
    first, second = data.runs
    assert first.scan["devices_scanned"] == 1200 and first.findings == {"stale": 3, "pending": 2, "duplicate": 1}
    assert first.by_class == {
        "stale": {"acted": 2, "deferred": 1},
        "expired_disabled": {"blocked": 1},
        "duplicate": {"dry_run": 1},
        "pending": {"skipped": 1},
    }
    assert first.decisions == {"acted": 2, "blocked": 1, "dry_run": 1, "skipped": 1, "deferred": 1}
    assert first.actions == {"disable": 1, "tag": 1}
    assert [r.run_id for r in data.halted_runs] == ["run-0302"] and "blast radius" in (second.halt_reason or "")
    assert data.destructive_total == 8  # disable and delete decisions of both runs
    acted = [row for row in data.destructive if row.record.entry.decision == "acted"]
    assert acted and all(row.graph_status == 204 and (row.graph_request_id or "").startswith("req-") for row in acted)
    assert [case.ticket for case in data.tickets] == ["INC-42"]
    assert data.tickets[0].diagnosis == {"stage": "registration", "summary": "device not registered"}
    assert data.tickets[0].request == "delete and re-register"
    assert data.timeline_basis == "acted" and sum(sum(c.values()) for _, c in data.timeline) == 4
    checks = data.checks
    assert not checks.writes_without_intent and not checks.repeated_decisions and not checks.acted_with_failed_gate


def test_model_flags_what_should_never_happen() -> None:
    entries = [
        AuditEntry(kind="outcome", command_id="c1", action="delete", data={"status": 204}),
        AuditEntry(kind="decision", command_id="c2", decision="acted", action="disable",
                   data={"gates": [{"name": "bitlocker", "passed": False, "reason": "keys"}]}),
        AuditEntry(kind="decision", command_id="c2", decision="failed", action="disable"),
    ]  # fmt: skip
    checks = ReportBuilder(generated_at=NOW).add_all(_records(entries)).build(VerifyResult([])).checks
    assert [r.entry.command_id for r in checks.writes_without_intent] == ["c1"]
    assert checks.repeated_decisions == {"c2": 2}
    assert [r.entry.command_id for r in checks.acted_with_failed_gate] == ["c2"]


def test_sparse_records_render_and_everything_is_escaped() -> None:
    entries = [
        AuditEntry(kind="run", run_id="r<1>"),  # a run record without any data
        AuditEntry(kind="decision", action="delete"),  # no decision, run, device, data
        AuditEntry(kind="decision", run_id="r<1>", decision="dry_run", action="disable", display_name="<script>alert(1)</script>",
                   data={"gates": "not a list", "evidence": ["odd", {"x": 1}]}),
        AuditEntry(kind="ticket", ticket="T&1", data={"diagnosis": "plain text diagnosis"}),
    ]  # fmt: skip
    breaks = [ChainBreak("2025-03-01", 2, "hash mismatch (record edited or moved)")]
    page = render(ReportBuilder(generated_at=NOW).add_all(_records(entries)).build(VerifyResult(breaks, 4, 1)))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "r&lt;1&gt;" in page and "T&amp;1" in page and "plain text diagnosis" in page
    assert "Hash chain broken" in page and "2025-03-01:0000000002" in page
    assert "proposed in report mode" in page  # nothing acted: the chart shows the dry-run actions
    # self-contained: nothing is loaded from anywhere
    assert not re.search(r"<(script|link|img|iframe)\b", page) and "src=" not in page and "url(" not in page
    assert "@import" not in page and not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", page)
    checker = _Tags()
    checker.feed(page)
    assert checker.open == [] and checker.ids >= {"summary", "chain", "runs", "halted", "timeline", "destructive", "tickets"}


class _Tags(HTMLParser):
    """Checks the markup is balanced and collects element ids."""

    VOID: ClassVar[frozenset[str]] = frozenset({"meta", "br", "line", "rect", "i", "input", "img"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def _chromium(binary: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
    ]  # fmt: skip
    return subprocess.run([binary, *flags, *extra, page.as_uri()], capture_output=True, text=True, timeout=120, check=True)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


async def test_report_renders_in_headless_chromium(tmp_path: Path, chromium: str, artifacts: Path) -> None:
    audit = SqliteAuditLog(tmp_path / "a.sqlite3", clock=StepClock(START, timedelta(minutes=7)))
    records = await fill(audit)
    html = await build_report(audit, AuditRequest(AuditQuery()), now=NOW)
    await audit.close()
    page = artifacts / "report.html"
    page.write_text(html, encoding="utf-8")

    dom = _chromium(chromium, page, tmp_path / "profile-dom", "--dump-dom").stdout
    assert 'id="summary"' in dom and "Hash chain intact." in dom
    assert records[-1].hash in dom[dom.index('id="chain"') : dom.index('id="runs"')]  # the anchor to keep
    summary = dom[dom.index('id="summary"') : dom.index('id="chain"')]
    assert re.search(r"<b>\d+</b><span>records</span>", summary)
    table = dom[dom.index('id="destructive-table"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 1 + 8  # header + every disable/delete decision
    assert "DESKTOP-A1" in table and "bitlocker" in table and "approximateLastSignInDateTime" in table
    assert "INC-42" in dom[dom.index('id="tickets-table"') :] and "device not registered" in dom
    assert "blast radius" in dom[dom.index('id="halted"') :]
    assert "<svg" in dom[dom.index('id="timeline"') :]

    top = artifacts / "report.png"
    _chromium(chromium, page, tmp_path / "profile-shot", f"--screenshot={top}", "--window-size=1366,900", "--hide-scrollbars")
    assert _png_size(top) == (1366, 900) and top.stat().st_size > 20_000  # a rendered page, not a blank one
    full = artifacts / "report-full.png"
    _chromium(chromium, page, tmp_path / "profile-full", f"--screenshot={full}", "--window-size=1366,3400", "--hide-scrollbars")
    assert _png_size(full) == (1366, 3400)
