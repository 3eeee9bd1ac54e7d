"""Renders ReportData as one self-contained HTML file: inline CSS and an inline SVG chart, no scripts,
no fonts or images fetched from anywhere, so it can be mailed or archived and opened offline.

Every value from the log is escaped (device names and ticket text come from outside).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape
from typing import Any

from shared.audit.chain import format_at
from shared.audit.report_model import MAX_TABLE_ROWS, DestructiveRow, ReportData, RunSummary, TicketCase, UndoKeepRow
from shared.jsonshape import is_object
from shared.ports import AuditRecord

PALETTE = ("#2563eb", "#dc2626", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#475569")
DECISION_ORDER = ("acted", "dry_run", "skipped", "blocked", "deferred", "failed", "unknown")

CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--ok:#047857;--bad:#b91c1c;--warn:#b45309}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);
background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:0}
.meta{color:var(--muted);margin:0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;margin:18px 0}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.tile b{display:block;font-size:22px}.tile span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.tile.ok{border-color:#a7f3d0;background:#ecfdf5}.tile.bad{border-color:#fecaca;background:#fef2f2}
.banner{border-radius:8px;padding:12px 16px;border:1px solid}
.banner.ok{background:#ecfdf5;border-color:#a7f3d0;color:var(--ok)}.banner.bad{background:#fef2f2;border-color:#fecaca;color:var(--bad)}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 12px}
.card header{display:flex;flex-wrap:wrap;gap:6px 16px;align-items:baseline;margin-bottom:8px}
.kv{color:var(--muted)}.kv b{color:var(--fg);font-weight:600}
.scroll{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:6px 10px;border-bottom:1px solid var(--line)}
th{background:#f1f5f9;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#374151;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:0}
.badge{display:inline-block;border-radius:999px;padding:1px 8px;font-size:12px;font-weight:600;white-space:nowrap;
background:#e5e7eb}
.acted{background:#dbeafe;color:#1e40af}.dry_run{background:#e0e7ff;color:#3730a3}.skipped{background:#f3f4f6;color:#374151}
.blocked{background:#fee2e2;color:#991b1b}.deferred{background:#fef3c7;color:#92400e}.failed{background:#fecaca;color:#7f1d1d}
.halted{background:#fee2e2;color:#991b1b}
ul.gates,ul.plain{list-style:none;margin:0;padding:0}ul.gates{min-width:200px;max-width:320px}
.pass{color:var(--ok)}.fail{color:var(--bad);font-weight:600}
dl.ev{margin:0}dl.ev dt{color:var(--muted);font-size:12px;overflow-wrap:anywhere}dl.ev dd{margin:0 0 4px;overflow-wrap:anywhere}
td.device{min-width:190px}td.evidence{min-width:180px}td.reason{min-width:140px}.ids{overflow-wrap:anywhere}
td.zero{color:#cbd5e1}td.when{min-width:150px}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.small{font-size:12px;color:var(--muted)}
.chips span{display:inline-block;background:#f1f5f9;border-radius:6px;padding:1px 8px;margin:0 6px 4px 0}
.legend span{display:inline-flex;align-items:center;margin-right:14px}.legend i{width:12px;height:12px;border-radius:3px;
display:inline-block;margin-right:5px}
svg{display:block;width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:8px}
.empty{color:var(--muted);font-style:italic}
footer{margin-top:36px;color:var(--muted);font-size:12px}
@media (max-width:800px){main{padding:14px}}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _time(at: datetime | None) -> str:
    return format_at(at)[:19].replace("T", " ") + " UTC" if at else "unknown"


def _badge(decision: str | None) -> str:
    name = decision or "unknown"
    return f'<span class="badge {_e(name)}">{_e(name)}</span>'


def _value(value: Any, limit: int = 240) -> str:
    """A JSON value shown compactly (nested values as JSON text, long text cut)."""
    if isinstance(value, Mapping | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = "" if value is None else str(value)
    return _e(text if len(text) <= limit else text[: limit - 1] + "…")


def _pairs(value: Any) -> str:
    if value is None or value == {} or value == []:
        return '<span class="empty">none recorded</span>'
    if is_object(value):
        rows = "".join(f"<dt>{_e(k)}</dt><dd>{_value(v)}</dd>" for k, v in value.items())
        return f'<dl class="ev">{rows}</dl>'
    return _value(value, 600)


def _tile(label: str, value: Any, cls: str = "") -> str:
    return f'<div class="tile {cls}"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _colors(actions: Iterable[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(actions)))}


def _decision_cols(counters: Iterable[Counter[str]]) -> list[str]:
    seen: set[str] = set[str]().union(*[set(c) for c in counters])
    return [d for d in DECISION_ORDER if d in seen] + sorted(seen - set(DECISION_ORDER))


# --------------------------------------------------------------------------- sections


def _truncated(data: ReportData) -> str:
    if data.truncated_at is None:
        return ""
    return (
        f'<div class="banner bad" role="status"><b>Partial report.</b> It covers the first {data.truncated_at:,} matching '
        "records, oldest first; narrow the filters (from, to, run_id) to see the rest. The chain check covers the days "
        "of the records read.</div>"
    )


def _summary(data: ReportData) -> str:
    v = data.verify
    tiles = [
        _tile("records", f"{data.total:,}"),
        _tile("runs", len(data.runs)),
        _tile("decisions", f"{sum(data.decisions.values()):,}"),
        *(_tile(d.replace("_", " "), f"{data.decisions[d]:,}") for d in _decision_cols([data.decisions])),
        _tile("halted runs", len(data.halted_runs), "bad" if data.halted_runs else ""),
        _tile("destructive decisions", f"{data.destructive_total:,}"),
        _tile("chain", "intact" if v.intact else "BROKEN", "ok" if v.intact else "bad"),
    ]
    return f'<section id="summary" class="tiles">{"".join(tiles)}</section>'


def _chain(data: ReportData) -> str:
    v = data.verify
    counted = f"{v.records:,} records in {v.days:,} day(s) checked" if v.records is not None and v.days is not None else ""
    anchor = ""
    if v.tip:
        anchor = (
            f'<p class="small">Newest record checked: <span class="mono">{_e(v.tip[0])}</span>, hash '
            f'<span class="mono">{_e(v.tip[1])}</span>. Keep this value: rewriting the log before it changes it.</p>'
        )
    if v.intact:
        body = f'<div class="banner ok"><b>Hash chain intact.</b> {_e(counted)}</div>{anchor}'
    else:
        rows = "".join(
            f"<tr><td class='mono'>{_e(b.partition)}:{b.seq:010d}</td><td>{_e(b.problem)}</td></tr>" for b in v.breaks[:50]
        )
        more = f"<p class='small'>{len(v.breaks) - 50} more not shown.</p>" if len(v.breaks) > 50 else ""
        body = (
            f'<div class="banner bad"><b>Hash chain broken: {len(v.breaks)} problem(s).</b> The log was altered or '
            f"damaged; the first broken record is {_e(v.breaks[0].partition)}:{v.breaks[0].seq:010d}. {_e(counted)}</div>"
            f'<div class="scroll" style="margin-top:8px"><table><thead><tr><th>record</th><th>problem</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>{more}{anchor}"
        )
    return f'<section id="chain"><h2>Chain verification</h2>{body}</section>'


def _run_card(run: RunSummary) -> str:
    scan = run.scan
    scanned = scan.get("devices_scanned")
    facts = [
        ("started", _time(run.first_at)),
        ("devices scanned", f"{scanned:,}" if isinstance(scanned, int) else "unknown"),
        ("commands enqueued", scan.get("commands_enqueued")),
        ("mode", scan.get("mode")),
        ("policy", str(scan["policy_hash"])[:12] if scan.get("policy_hash") else None),
    ]
    kv = "".join(f'<span class="kv">{_e(k)}: <b>{_e(v)}</b></span>' for k, v in facts if v is not None)
    why = _e(run.halt_reason or "no reason recorded")
    halted = f' <span class="badge halted">halted</span> <span class="kv">{why}</span>' if run.halted else ""
    if run.would_halt:
        halted += f' <span class="badge halted">enforce would halt</span> <span class="kv">{_e(run.would_halt)}</span>'
    if run.undone:
        done = ", ".join(f"{count:,} {action}" for action, count in sorted(run.undone.items()))
        halted += f' <span class="badge dry_run">undone</span> <span class="kv">{_e(done)}</span>'
    findings = run.findings
    chips = (
        '<div class="chips">Findings: '
        + "".join(f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in sorted(findings.items()))
        + "</div>"
        if findings
        else ('<p class="small">No scan summary (kind run) in this selection.</p>' if not run.has_scan_record else "")
    )
    cols = _decision_cols(run.by_class.values())
    if cols:
        head = "".join(f'<th class="num">{_e(c)}</th>' for c in cols)
        rows = ""
        for cls in sorted(run.by_class):
            counts = run.by_class[cls]
            cells = "".join(f'<td class="num{" zero" if not counts[c] else ""}">{counts[c]:,}</td>' for c in cols)
            rows += f"<tr><td>{_e(cls)}</td>{cells}<td class='num'><b>{sum(counts.values()):,}</b></td></tr>"
        totals = "".join(f'<td class="num"><b>{run.decisions[c]:,}</b></td>' for c in cols)
        rows += f"<tr><td><b>all classes</b></td>{totals}<td class='num'><b>{sum(run.decisions.values()):,}</b></td></tr>"
        table = (
            f'<div class="scroll"><table><thead><tr><th>class</th>{head}<th class="num">total</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    else:
        table = '<p class="empty">No decisions recorded for this run.</p>'
    return (
        f'<article class="card run"><header><h3 class="mono">{_e(run.run_id)}</h3>{kv}{halted}</header>{chips}{table}</article>'
    )


def _runs(data: ReportData) -> str:
    cards = "".join(_run_card(run) for run in data.runs) or '<p class="empty">No runs in this selection.</p>'
    return f'<section id="runs"><h2>Runs: findings by class and decision</h2>{cards}</section>'


def _halted(data: ReportData) -> str:
    runs = data.halted_runs
    if not runs:
        return '<section id="halted"><h2>Halted runs</h2><p class="empty">No run was halted.</p></section>'
    rows = "".join(
        f"<tr><td class='mono'>{_e(r.run_id)}</td><td>{_e(_time(r.first_at))}</td>"
        f"<td>{_e(r.halt_reason or 'no reason recorded')}</td></tr>"
        for r in runs
    )
    return (
        '<section id="halted"><h2>Halted runs</h2><div class="scroll"><table><thead><tr><th>run</th><th>when</th>'
        f"<th>why it stopped</th></tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _ticks(peak: int) -> tuple[int, int]:
    """A whole-number tick step (1, 2, 5 x 10^n) and how many ticks reach `peak`: at most 5 gridlines."""
    step = 1
    while -(-peak // step) > 5:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step, max(1, -(-peak // step))


def chart_svg(data: ReportData, width: int = 1180, height: int = 280) -> str:
    """Stacked bars of actions per time bucket, as inline SVG."""
    buckets = data.timeline
    if not buckets:
        return ""
    colors = _colors(a for _, c in buckets for a in c)
    left, right, top, bottom = 48, 12, 14, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    tick, ticks = _ticks(max((sum(c.values()) for _, c in buckets), default=1))
    peak = tick * ticks
    slot = plot_w / len(buckets)
    bar = min(56.0, max(2.0, slot * 0.72))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="actions over time">']
    for i in range(ticks + 1):  # grid lines and counts
        value = tick * i
        y = top + plot_h - plot_h * i / ticks
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#6b7280">{value:.0f}</text>')
    label_every = max(1, round(len(buckets) / 12))
    for index, (start, counts) in enumerate(buckets):
        x = left + index * slot + (slot - bar) / 2
        y = top + plot_h
        for action in sorted(counts):
            h = plot_h * counts[action] / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colors[action]}">'
                f"<title>{_e(action)}: {counts[action]} ({_e(_time(start))})</title></rect>"
            )
        if index % label_every == 0:
            label = start.strftime("%H:%M" if data.timeline_bucket == "hour" else "%m-%d")
            if data.timeline_bucket == "hour" and (index == 0 or start.hour == 0):
                label = start.strftime("%m-%d %H:%M")
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" '
                f'fill="#374151">{label}</text>'
            )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9ca3af"/>')
    parts.append("</svg>")
    return "".join(parts)


def _timeline(data: ReportData) -> str:
    if not data.timeline:
        body = '<p class="empty">No actions were taken or proposed in this selection.</p>'
    else:
        colors = _colors(a for _, c in data.timeline for a in c)
        totals: Counter[str] = Counter()
        for _, counts in data.timeline:
            totals.update(counts)
        legend = "".join(f'<span><i style="background:{colors[a]}"></i>{_e(a)} ({totals[a]:,})</span>' for a in sorted(colors))
        what = "acted" if data.timeline_basis == "acted" else "proposed in report mode (dry run; nothing was acted)"
        body = (
            f'<p class="small">Terminal decisions {what}, per {data.timeline_bucket} (UTC).</p>'
            f'<p class="legend">{legend}</p>{chart_svg(data)}'
        )
    return f'<section id="timeline"><h2>Actions over time</h2>{body}</section>'


def _gates(gates: list[Mapping[str, Any]]) -> str:
    """Failed gates one per line with their reason; passed gates as one line of names (reasons on hover)."""
    if not gates:
        return '<span class="empty">none recorded</span>'
    failed = [
        f'<li class="fail">✗ {_e(g.get("name", "?"))}: {_e(g.get("reason", ""))}</li>' for g in gates if g.get("passed") is False
    ]
    passed = [
        f'<span title="{_e(g.get("reason", ""))}">{_e(g.get("name", "?"))}</span>' for g in gates if g.get("passed") is not False
    ]
    ok = f'<li class="pass">✓ {", ".join(passed)}</li>' if passed else ""
    return f'<ul class="gates">{"".join(failed)}{ok}</ul>'


def _device_cell(record: AuditRecord, device_class: str | None) -> str:
    entry = record.entry
    lines = [f"<b>{_e(entry.display_name)}</b>" if entry.display_name else '<span class="empty">no name</span>']
    lines.append(f'<span class="small">class {_e(device_class or "unknown")}</span>')
    if entry.device_object_id:
        lines.append(f'<span class="mono small ids">id {_e(entry.device_object_id)}</span>')
    if entry.device_id:
        lines.append(f'<span class="mono small ids">deviceId {_e(entry.device_id)}</span>')
    return "<br>".join(lines)


def _destructive_row(row: DestructiveRow) -> str:
    r, entry = row.record, row.record.entry
    graph = ""
    if row.graph_status is not None or row.graph_request_id:
        graph = (
            f'<br><span class="small">Graph {_e(row.graph_status)} · request-id '
            f'<span class="mono">{_e(row.graph_request_id)}</span></span>'
        )
    run = f"<br><span class='small'>run <span class='mono'>{_e(entry.run_id)}</span></span>" if entry.run_id else ""
    return (
        f"<tr><td class='when'>{_e(_time(r.at))}<br><span class='mono small'>{_e(r.record_id)}</span>{run}</td>"
        f"<td class='device'>{_device_cell(r, row.device_class)}</td>"
        f"<td><b>{_e(entry.action)}</b><br>{_badge(entry.decision)}{graph}</td>"
        f"<td class='reason'>{_e(entry.reason)}</td><td>{_gates(row.gates)}</td><td class='evidence'>{_pairs(row.evidence)}</td>"
        f"<td>{_e(entry.ticket) or '<span class=small>nightly scan</span>'}</td></tr>"
    )


def _destructive(data: ReportData) -> str:
    if not data.destructive:
        body = '<p class="empty">No disable or delete was decided in this selection.</p>'
    else:
        rows = "".join(_destructive_row(row) for row in data.destructive)
        more = (
            f"<p class='small'>Showing the first {MAX_TABLE_ROWS:,} of {data.destructive_total:,}; "
            "export the rest as CSV or JSON.</p>"
            if data.destructive_total > len(data.destructive)
            else ""
        )
        body = (
            '<div class="scroll"><table id="destructive-table"><thead><tr><th>when</th><th>device</th><th>action</th>'
            "<th>reason</th><th>gates</th><th>evidence</th><th>requested by</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>{more}"
        )
    return f'<section id="destructive"><h2>Destructive actions: disable and delete</h2>{body}</section>'


def _ticket_row(case: TicketCase) -> str:
    decisions = "".join(f"<li>{_e(d)}</li>" for d in case.decisions) or '<li class="empty">none yet</li>'
    result = f'<span class="small">{_e(case.result)}</span>' if case.result else ""
    return (
        f"<tr><td class='mono'>{_e(case.ticket)}</td><td>{_e(_time(case.first_at))}</td><td>{_e(case.device) or '—'}</td>"
        f"<td>{_e(case.request) or '<span class=empty>not recorded</span>'}</td><td>{_pairs(case.diagnosis)}</td>"
        f"<td><ul class='plain'>{decisions}</ul>{result}</td></tr>"
    )


def _tickets(data: ReportData) -> str:
    if not data.tickets:
        body = '<p class="empty">No ticket-driven requests in this selection.</p>'
    else:
        rows = "".join(_ticket_row(case) for case in data.tickets)
        body = (
            '<div class="scroll"><table id="tickets-table"><thead><tr><th>ticket</th><th>received</th><th>device</th>'
            f"<th>request</th><th>diagnosis</th><th>decisions</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    return f'<section id="tickets"><h2>Ticket-driven requests</h2>{body}</section>'


def _device_name(record: AuditRecord) -> str:
    entry = record.entry
    name = f"<b>{_e(entry.display_name)}</b>" if entry.display_name else '<span class="empty">not named</span>'
    ids = f'<br><span class="mono small ids">id {_e(entry.device_object_id)}</span>' if entry.device_object_id else ""
    return name + ids


def _undo_keep_row(row: UndoKeepRow) -> str:
    record = row.record
    cls = "acted" if row.what in ("keep", "undone") else ("blocked" if "refused" in row.what else "")
    return (
        f"<tr><td class='when'>{_e(_time(record.at))}</td><td class='device'>{_device_name(record)}</td>"
        f'<td><span class="badge {cls}">{_e(row.what)}</span></td><td>{_e(row.who) or "—"}</td>'
        f"<td class='reason'>{_e(row.detail) or '—'}</td><td class='mono'>{_e(record.entry.run_id) or '—'}</td></tr>"
    )


def _undo_keep(data: ReportData) -> str:
    """The owners' keeps and the undos: asked for, decided (put back or skipped, and why), and what they undid."""
    if not data.undo_keep:
        body = '<p class="empty">No undo and no keep in this selection.</p>'
    else:
        rows = "".join(_undo_keep_row(row) for row in data.undo_keep)
        more = (
            f"<p class='small'>Showing the first {MAX_TABLE_ROWS:,} of {data.undo_keep_total:,}.</p>"
            if data.undo_keep_total > len(data.undo_keep)
            else ""
        )
        body = (
            '<div class="scroll"><table id="undo-keep-table"><thead><tr><th>when</th><th>device</th><th>what</th>'
            f"<th>who</th><th>why</th><th>run</th></tr></thead><tbody>{rows}</tbody></table></div>{more}"
        )
    return f'<section id="undo-keep"><h2>Undo and keep</h2>{body}</section>'


def _checks(data: ReportData, evaluated: bool) -> str:
    if not evaluated:
        return (
            '<section id="checks"><h2>Consistency checks</h2><p class="empty">Not evaluated: the kind, decision or action '
            "filter hides records these checks need.</p></section>"
        )
    c = data.checks
    items = [
        (len(c.writes_without_intent), "Graph writes (outcome records) without an intent record before them",
         [r.record_id for r in c.writes_without_intent]),
        (len(c.repeated_decisions), "commands with more than one terminal decision",
         [f"{cid} ({n})" for cid, n in c.repeated_decisions.items()]),
        (len(c.acted_with_failed_gate), "commands acted on although a gate did not pass",
         [r.record_id for r in c.acted_with_failed_gate]),
    ]  # fmt: skip
    lis: list[str] = []
    for count, label, examples in items:
        if count:
            shown = ", ".join(examples[:10]) + (" …" if len(examples) > 10 else "")
            lis.append(f'<li class="fail">✗ {count} {_e(label)}: <span class="mono small">{_e(shown)}</span></li>')
        else:
            lis.append(f'<li class="pass">✓ no {_e(label)}</li>')
    return (
        '<section id="checks"><h2>Consistency checks</h2><p class="small">Within the records of this report.</p>'
        f'<ul class="plain">{"".join(lis)}</ul></section>'
    )


def render(data: ReportData, *, checks_evaluated: bool = True) -> str:
    """The whole report as one HTML document."""
    filters = ", ".join(f"{k}={v}" for k, v in data.filters.items()) or "none (the whole log)"
    span = f"{_time(data.first_at)} to {_time(data.last_at)}" if data.first_at else "no records"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>entra-janitor audit report</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>entra-janitor audit report</h1><p class='meta'>Generated {_e(_time(data.generated_at))} · "
        f"records {_e(span)} · filters: {_e(filters)}</p></header>"
        f"{_truncated(data)}{_summary(data)}{_chain(data)}{_runs(data)}{_halted(data)}{_timeline(data)}{_destructive(data)}"
        f"{_undo_keep(data)}{_tickets(data)}{_checks(data, checks_evaluated)}"
        "<footer>Every value above comes from the append-only, hash-chained audit log. Export the same selection "
        "with <span class='mono'>janitor audit export</span> for the full records.</footer>"
        "</main></body></html>"
    )
