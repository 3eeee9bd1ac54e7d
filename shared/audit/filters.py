"""Review filters from text (HTTP query parameters or CLI options) to an AuditQuery, validated.

One parser for both entry points, so `GET /api/audit?decision=x` and `janitor audit list --decision x`
reject the same values with the same message, which names the parameter (HTTP 400, CLI exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shared.audit.chain import day_start, utc
from shared.audit.codec import decode_continuation
from shared.audit.export import FORMATS
from shared.errors import PermanentError
from shared.ports import AuditQuery

#: Terminal decisions, and `undone`: the mark an acted undo leaves on the decision it put back (kind `undo`).
DECISIONS: tuple[str, ...] = ("acted", "dry_run", "skipped", "blocked", "deferred", "failed", "undone")
#: Parameter names as the HTTP API spells them (the CLI uses the same words as --options).
TEXT_FILTERS: tuple[str, ...] = ("run_id", "command_id", "device", "ticket")
WORD_FILTERS: tuple[str, ...] = ("action", "kind")
PARAMETERS: tuple[str, ...] = ("from", "to", *TEXT_FILTERS, "decision", *WORD_FILTERS, "limit", "continuation", "format")
#: Parameters the platform adds and the API ignores (`code` carries the function key).
IGNORED: frozenset[str] = frozenset({"code"})
DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
MAX_TEXT = 256

#: Times a filter may name: well inside what datetime can hold, so the adapters' day arithmetic never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

_AGE = re.compile(r"^(\d{1,6})\s*([mhd])$", re.ASCII)
_WORD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class FilterError(PermanentError):
    """A filter value that cannot be used; names the parameter so the caller knows what to fix."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        self.problem = problem
        super().__init__(f"parameter {parameter!r} {problem}")


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """A validated review request: what to select, how much, from where, in which format."""

    query: AuditQuery
    limit: int = DEFAULT_LIMIT
    continuation: str | None = None
    format: str = "json"


def parse_time(parameter: str, value: str, now: datetime, *, end: bool = False) -> datetime:
    """A date, an ISO time (UTC when no offset is given) or an age like 90m, 24h, 7d (before now).

    With `end`, a bare date means the end of that day, so from=2025-03-01&to=2025-03-01 is that whole day.
    Times before EARLIEST or after LATEST are refused (an age of 999999d, year 1 shifted by its offset).
    """
    try:
        at = _time(value.strip(), now, end)
    except ValueError:
        raise FilterError(
            parameter, f"must be a date (2025-03-01), a time (2025-03-01T02:00:00Z) or an age such as 24h or 7d, not {value!r}"
        ) from None
    except OverflowError:
        at = None
    if at is None or not EARLIEST <= at <= LATEST:
        raise FilterError(parameter, f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, not {value!r}")
    return at


def _time(text: str, now: datetime, end: bool) -> datetime:
    age = _AGE.match(text)
    if age:
        return utc(now) - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    if len(text) == 10:
        start = day_start(date.fromisoformat(text).isoformat())
        return start + timedelta(days=1) if end else start
    return utc(datetime.fromisoformat(text))


def _text(parameter: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise FilterError(parameter, f"is longer than {MAX_TEXT} characters")
    if any(not ch.isprintable() for ch in value):
        raise FilterError(parameter, "contains control characters")
    return value


def parse_request(
    params: Mapping[str, str | None],
    *,
    now: datetime | None = None,
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
    formats: tuple[str, ...] = FORMATS,
) -> AuditRequest:
    """Validate raw parameters (absent or empty = not given); FilterError names the first bad one."""
    unknown = sorted(set(params) - set(PARAMETERS) - IGNORED)
    if unknown:
        raise FilterError(unknown[0], f"is not a filter; use {', '.join(PARAMETERS)}")
    raw = {name: value.strip() for name, value in params.items() if value is not None and value.strip() != ""}
    now = now or datetime.now(UTC)

    since = parse_time("from", raw["from"], now) if "from" in raw else None
    until = parse_time("to", raw["to"], now, end=True) if "to" in raw else None
    if since is not None and until is not None and until <= since:
        raise FilterError("to", f"must be later than 'from' ({raw['from']})")

    fields: dict[str, str | None] = {name: _text(name, raw[name]) if name in raw else None for name in TEXT_FILTERS}
    decision = raw.get("decision")
    if decision is not None and decision not in DECISIONS:
        raise FilterError("decision", f"must be one of {', '.join(DECISIONS)}, not {decision!r}")
    for name in WORD_FILTERS:
        value = raw.get(name)
        if value is not None and not _WORD.match(value):
            raise FilterError(name, f"must be a lower-case word such as disable or delete, not {value!r}")
        fields[name] = value

    limit = default_limit
    if "limit" in raw:
        try:
            limit = int(raw["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= max_limit:
            raise FilterError("limit", f"must be a whole number from 1 to {max_limit}, not {raw['limit']!r}")

    continuation = raw.get("continuation")
    if continuation is not None:
        try:
            decode_continuation(continuation)
        except ValueError as exc:
            raise FilterError("continuation", str(exc)) from None

    fmt = raw.get("format", formats[0]).lower()
    if fmt not in formats:
        raise FilterError("format", f"must be one of {', '.join(formats)}, not {raw['format']!r}")

    query = AuditQuery(
        since=since,
        until=until,
        run_id=fields["run_id"],
        command_id=fields["command_id"],
        device=fields["device"],
        decision=decision,
        action=fields["action"],
        ticket=fields["ticket"],
        kind=fields["kind"],
    )
    return AuditRequest(query=query, limit=limit, continuation=continuation, format=fmt)
