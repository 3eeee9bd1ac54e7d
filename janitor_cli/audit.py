"""`janitor audit list|export|verify|report`: review the audit log without reading logs.

Filters are the HTTP API's (same parser, same messages): --from/--to take a date, a time or an age
(24h, 7d); --device takes a display name, object id or deviceId.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO, cast

import typer

from janitor_cli._common import TerminalText, echo, fail, run
from shared import bootstrap
from shared.audit.codec import record_to_dict
from shared.audit.export import export
from shared.audit.filters import AuditRequest, FilterError, parse_request
from shared.audit.review import build_report, verify_log
from shared.ports import AuditLog, AuditRecord

audit_app = typer.Typer(help="Review the audit log: list, export, verify the hash chain, HTML report.", no_args_is_help=True)

From = Annotated[str | None, typer.Option("--from", help="Start (inclusive): 2025-03-01, 2025-03-01T02:00Z or an age: 24h, 7d.")]
To = Annotated[str | None, typer.Option("--to", help="End (exclusive; a bare date includes that whole day).")]
RunId = Annotated[str | None, typer.Option("--run-id", help="Only this scan run.")]
CommandId = Annotated[str | None, typer.Option("--command-id", help="Only this remediation command.")]
Device = Annotated[str | None, typer.Option("--device", help="Display name, object id or deviceId (any case).")]
Decision = Annotated[
    str | None,
    typer.Option("--decision", help="acted, dry_run, skipped, blocked, deferred, failed, or undone (put back by an undo)."),
]
Action = Annotated[str | None, typer.Option("--action", help="disable, delete, tag, notify, ...")]
Ticket = Annotated[str | None, typer.Option("--ticket", help="Only records of this ticket.")]
Kind = Annotated[str | None, typer.Option("--kind", help="run, decision, intent, outcome, ticket, ...")]


def _request(**params: str | None) -> AuditRequest:
    """Validate the options with the API's parser (its FilterError becomes a one-line error, exit 2)."""
    names = {"since": "from", "until": "to"}
    try:
        return parse_request({names.get(k, k): v for k, v in params.items()}, max_limit=100_000)
    except FilterError as exc:
        raise fail(str(exc)) from None


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield cast(TextIO, TerminalText(sys.stdout))  # the file gets the exact text; a terminal the cleaned one
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def _line(record: AuditRecord) -> str:
    e = record.entry
    device = e.display_name or e.device_object_id or e.device_id or "-"
    reason = (e.reason or "").replace("\n", " ")
    reason = reason if len(reason) <= 60 else reason[:59] + "…"
    at = record.at.strftime("%Y-%m-%d %H:%M:%S")
    columns = (at, record.record_id, f"{e.kind:<8}", f"{e.run_id or '-':<20}", f"{device:<24}", f"{e.decision or '-':<8}")
    return "  ".join((*columns, f"{e.action or '-':<8}", reason))


@audit_app.command("list")
def list_records(
    since: From = None,
    until: To = None,
    run_id: RunId = None,
    command_id: CommandId = None,
    device: Device = None,
    decision: Decision = None,
    action: Action = None,
    ticket: Ticket = None,
    kind: Kind = None,
    limit: Annotated[int, typer.Option("--limit", help="Records per page.")] = 50,
    continuation: Annotated[str | None, typer.Option("--continuation", help="Token printed by the previous page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Matching records, oldest first, one page at a time."""
    request = _request(
        since=since, until=until, run_id=run_id, command_id=command_id, device=device, decision=decision,
        action=action, ticket=ticket, kind=kind, limit=str(limit), continuation=continuation,
    )  # fmt: skip

    async def go() -> None:
        audit = bootstrap.audit_log()
        try:
            page = await audit.query(request.query, limit=request.limit, continuation=request.continuation)
        finally:
            await audit.close()
        for record in page.records:
            echo(json.dumps(record_to_dict(record), ensure_ascii=False) if as_json else _line(record))
        if not page.records and not as_json:
            echo("no matching records", err=True)
        if page.continuation:
            echo(f"more records: add --continuation {page.continuation}", err=True)

    run(go())


@audit_app.command("export")
def export_records(
    fmt: Annotated[str, typer.Option("--format", help="csv, json or excel (CSV with a UTF-8 BOM, every cell quoted).")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
    since: From = None,
    until: To = None,
    run_id: RunId = None,
    command_id: CommandId = None,
    device: Device = None,
    decision: Decision = None,
    action: Action = None,
    ticket: Ticket = None,
    kind: Kind = None,
) -> None:
    """Every matching record as CSV (header + one row each; `excel`: for double-clicking into Excel) or a JSON array."""
    request = _request(
        since=since, until=until, run_id=run_id, command_id=command_id, device=device, decision=decision,
        action=action, ticket=ticket, kind=kind, format=fmt,
    )  # fmt: skip

    async def go() -> int:
        audit = bootstrap.audit_log()
        try:
            with _output(out) as handle:
                return await export(audit.iter_records(request.query), handle, request.format)
        finally:
            await audit.close()

    count = run(go())
    if out is not None:
        echo(f"wrote {count} record(s) to {out}", err=True)


@audit_app.command("verify")
def verify(since: From = None, until: To = None) -> None:
    """Walk the hash chains: exit 0 when intact, 1 and the first broken record when not."""
    request = _request(since=since, until=until)

    async def go() -> tuple[int, str]:
        audit = bootstrap.audit_log()
        try:
            result = await verify_log(audit, request.query.since, request.query.until)
        finally:
            await audit.close()
        counted = f"{result.records} record(s) in {result.days} day(s)" if result.records is not None else "all records"
        if result.intact:
            tip = f"; newest {result.tip[0]} hash {result.tip[1]}" if result.tip else ""
            return 0, f"audit log intact: {counted} checked{tip}"
        first = result.breaks[0]
        others = f" ({len(result.breaks) - 1} more problem(s))" if len(result.breaks) > 1 else ""
        return 1, f"audit log BROKEN at record {first.partition}:{first.seq:010d}: {first.problem}{others}"

    code, message = run(go())
    echo(message, err=code != 0)
    raise typer.Exit(code)


@audit_app.command("report")
def report(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write (one self-contained file).")],
    since: From = None,
    until: To = None,
    run_id: RunId = None,
    command_id: CommandId = None,
    device: Device = None,
    decision: Decision = None,
    action: Action = None,
    ticket: Ticket = None,
    kind: Kind = None,
) -> None:
    """Write the HTML review report: runs, actions over time, destructive actions, tickets, chain check."""
    request = _request(
        since=since, until=until, run_id=run_id, command_id=command_id, device=device, decision=decision,
        action=action, ticket=ticket, kind=kind,
    )  # fmt: skip

    async def go() -> str:
        audit: AuditLog = bootstrap.audit_log()
        try:
            return await build_report(audit, request)
        finally:
            await audit.close()

    html = run(go())
    out.write_text(html, encoding="utf-8")
    echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
