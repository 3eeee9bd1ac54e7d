"""Review operations over any AuditLog: verification with counts, and the HTML report for a selection.

Shared by the CLI and the HTTP API; the adapters' optional `verify_walk` supplies record and day counts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.audit.filters import AuditRequest
from shared.audit.report_html import render
from shared.audit.report_model import ReportBuilder, VerifyResult
from shared.ports import AuditLog, AuditQuery


async def verify_log(log: AuditLog, since: datetime | None = None, until: datetime | None = None) -> VerifyResult:
    """Walk the chains of the days in [since, until) (all days when unbounded)."""
    walk = getattr(log, "verify_walk", None)
    if walk is None:
        return VerifyResult(await log.verify(since, until))
    walker = await walk(since, until)
    return VerifyResult(walker.finish(), walker.records, walker.partitions, walker.tip)


def describe_filters(query: AuditQuery) -> dict[str, str]:
    """The filters a request used, for the report's header."""
    shown: dict[str, str] = {}
    if query.since is not None:
        shown["from"] = query.since.isoformat()
    if query.until is not None:
        shown["to"] = query.until.isoformat()
    for name in ("run_id", "command_id", "device", "decision", "action", "ticket", "kind"):
        value = getattr(query, name)
        if value is not None:
            shown[name] = value
    return shown


async def build_report(log: AuditLog, request: AuditRequest, *, now: datetime | None = None) -> str:
    """The self-contained HTML report of the records `request` selects, with the chain check of its days."""
    query = request.query
    builder = ReportBuilder(generated_at=now or datetime.now(UTC), filters=describe_filters(query))
    async for record in log.iter_records(query):
        builder.add(record)
    verify = await verify_log(log, query.since, query.until)
    complete = query.kind is None and query.decision is None and query.action is None
    return render(builder.build(verify), checks_evaluated=complete)
