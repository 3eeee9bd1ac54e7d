"""Filter parsing shared by the CLI and the HTTP API: good values become an AuditQuery, bad ones name the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.audit.codec import encode_continuation
from shared.audit.filters import FilterError, parse_request
from shared.ports import AuditQuery

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def test_times_accept_dates_times_and_ages() -> None:
    request = parse_request({"from": "2025-03-01", "to": "2025-03-02"}, now=NOW)
    assert request.query.since == datetime(2025, 3, 1, tzinfo=UTC)
    assert request.query.until == datetime(2025, 3, 3, tzinfo=UTC)  # a bare `to` date includes that day
    assert parse_request({"from": "2025-03-01T02:30:00Z"}, now=NOW).query.since == datetime(2025, 3, 1, 2, 30, tzinfo=UTC)
    assert parse_request({"from": "2025-03-01T04:30:00+02:00"}, now=NOW).query.since == datetime(2025, 3, 1, 2, 30, tzinfo=UTC)
    assert parse_request({"from": "2025-03-01T02:30"}, now=NOW).query.since == datetime(2025, 3, 1, 2, 30, tzinfo=UTC)
    assert parse_request({"from": "24h"}, now=NOW).query.since == NOW - timedelta(hours=24)
    assert parse_request({"from": "7d", "to": "90m"}, now=NOW).query == AuditQuery(
        since=NOW - timedelta(days=7), until=NOW - timedelta(minutes=90)
    )


def test_filters_map_onto_the_query() -> None:
    params = {
        "run_id": "run-1", "command_id": "c-9", "device": "DESKTOP-1", "decision": "blocked", "action": "delete",
        "ticket": "INC-1", "kind": "decision", "limit": "25", "format": "CSV", "code": "function-key", "to": "",
    }  # fmt: skip
    request = parse_request(params, now=NOW)
    assert request.query == AuditQuery(
        run_id="run-1", command_id="c-9", device="DESKTOP-1", decision="blocked", action="delete", ticket="INC-1", kind="decision"
    )
    assert (request.limit, request.format, request.continuation) == (25, "csv", None)
    token = encode_continuation("2025-03-01", 17)
    assert parse_request({"continuation": token}, now=NOW).continuation == token
    assert parse_request({}, now=NOW).limit == 100


@pytest.mark.parametrize(
    ("params", "parameter", "says"),
    [
        ({"from": "yesterday"}, "from", "must be a date"),
        ({"to": "2025-13-01"}, "to", "must be a date"),
        ({"from": "2025-03-02", "to": "2025-03-01T00:00:00Z"}, "to", "later than 'from'"),
        ({"decision": "approved"}, "decision", "acted, dry_run"),
        ({"action": "DROP TABLE"}, "action", "lower-case word"),
        ({"kind": "x" * 41}, "kind", "lower-case word"),
        ({"device": "a\x00b"}, "device", "control characters"),
        ({"run_id": "r" * 300}, "run_id", "longer than 256"),
        ({"limit": "0"}, "limit", "1 to 1000"),
        ({"limit": "ten"}, "limit", "whole number"),
        ({"limit": "5000"}, "limit", "1 to 1000"),
        ({"continuation": "not-a-token"}, "continuation", "not a continuation token"),
        ({"continuation": encode_continuation("2025-03-01", 1)[:-3]}, "continuation", "not a continuation token"),
        ({"format": "xml"}, "format", "json, csv"),
        ({"devise": "x"}, "devise", "is not a filter"),
        ({"from": "999999d"}, "from", "must lie between"),  # OverflowError (a 500, a CLI traceback) before issue 12
        ({"to": "9999-12-31"}, "to", "must lie between"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "from", "must lie between"),
        ({"from": "\u00b2d"}, "from", "must be a date"),
        ({"continuation": encode_continuation("2025-03-01", 10**30)}, "continuation", "not a continuation token"),
    ],
)
def test_bad_values_name_the_parameter(params: dict[str, str], parameter: str, says: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_request(params, now=NOW)
    assert caught.value.parameter == parameter
    assert says in str(caught.value) and repr(parameter) in str(caught.value)
