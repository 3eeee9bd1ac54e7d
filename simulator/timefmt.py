"""Graph timestamps as epoch seconds: compact columns, fast formatting, one null sentinel.

The fleet keeps every timestamp as an int (seconds since 1970, UTC) so filters compare integers and a
million devices cost eight bytes per column; text is produced only when a device is encoded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

#: Stands for a null timestamp in `array('q')` columns.
NULL = -(2**63)

DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_day_cache: dict[int, str] = {}
_clock: list[str] = []  # "T00:00:00Z" ... "T23:59:59Z", built on first use

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z|[+-]\d{2}:\d{2})?$", re.IGNORECASE
)


def iso(ts: int) -> str | None:
    """`2024-05-01T12:00:00Z` for epoch seconds; None for the null sentinel."""
    if ts == NULL:
        return None
    days, rest = divmod(ts, DAY)
    day = _day_cache.get(days)
    if day is None:
        day = _day_cache[days] = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")
    if not _clock:
        _clock.extend(f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(DAY))
    return day + _clock[rest]


def epoch(moment: datetime) -> int:
    """Whole epoch seconds of an aware datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def from_epoch(ts: int) -> datetime | None:
    return None if ts == NULL else _EPOCH + timedelta(seconds=ts)


def parse(text: str) -> int:
    """Epoch seconds of an OData/ISO-8601 timestamp (`Z`, offset or none = UTC; date alone = midnight).

    Raises ValueError with the offending text when it is not a timestamp.
    """
    match = _ISO.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, _fraction, zone = match.groups()
    moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC)
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return int(moment.timestamp())
