"""Review operations over any AuditLog: verification with counts, and the HTML report for a selection.

Shared by the CLI and the HTTP API; the adapters' optional `verify_walk` supplies record and day counts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.audit.chain import day_start, next_partition
from shared.audit.filters import AuditRequest
from shared.audit.report_html import render
from shared.audit.report_model import ReportBuilder, VerifyResult
from shared.ports import AuditLog, AuditQuery

#: Records read from the store at a time by a bounded report.
READ_CHUNK = 500


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


async def build_report(
    log: AuditLog, request: AuditRequest, *, now: datetime | None = None, limit: int | None = None
) -> str:
    """The self-contained HTML report of the records `request` selects, with the chain check of its days.

    With `limit` (the HTTP API) at most that many records are read, the report says when it stopped there, and
    the chain check covers the days of the records read: the work behind one answer is bounded, whatever the
    log holds.
    """
    query = request.query
    builder = ReportBuilder(generated_at=now or datetime.now(UTC), filters=describe_filters(query))
    first: str | None = None
    last: str | None = None
    truncated = False
    if limit is None:
        async for record in log.iter_records(query):
            builder.add(record)
    else:
        read, token = 0, None
        while True:
            page = await log.query(query, limit=min(READ_CHUNK, limit + 1 - read), continuation=token)
            for record in page.records[: max(0, limit - read)]:
                builder.add(record)
                first, last = first or record.partition, record.partition
            read += len(page.records)
            token = page.continuation
            if read > limit:  # one record more than the limit was asked for: there is more
                truncated = True
                break
            if token is None:
                break
    if limit is None:
        verify = await verify_log(log, query.since, query.until)
    elif first is None or last is None:
        verify = VerifyResult([], 0, 0)  # nothing read: no day to check
    else:
        verify = await verify_log(log, day_start(first), day_start(next_partition(last)))
    complete = query.kind is None and query.decision is None and query.action is None
    data = builder.build(verify)
    data.truncated_at = limit if truncated else None
    return render(data, checks_evaluated=complete)
