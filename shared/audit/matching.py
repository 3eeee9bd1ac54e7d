"""What an AuditQuery selects, as pure functions both adapters follow.

The SQLite adapter turns these rules into SQL and the Table adapter into OData filters; `matches` is the
reference both are tested against. `device` matches display name, object id or deviceId, ignoring case.
"""

from __future__ import annotations

from datetime import timedelta

from shared.audit.chain import format_at, partition_of
from shared.ports import AuditQuery, AuditRecord

#: Filters that compare one entry field for equality (query attribute == entry attribute).
EXACT_FILTERS: tuple[str, ...] = ("run_id", "command_id", "decision", "action", "ticket", "kind")
_TICK = timedelta(microseconds=1)
#: Entry fields the `device` filter looks at.
DEVICE_FIELDS: tuple[str, ...] = ("display_name", "device_object_id", "device_id")


def device_key(value: str | None) -> str | None:
    """How device names and ids are compared: case-folded (GUIDs and Windows names are case-insensitive)."""
    return value.casefold() if value is not None else None


def partition_range(query: AuditQuery) -> tuple[str | None, str | None]:
    """First and last day a query can touch (None = unbounded): time ranges read only these partitions."""
    first = partition_of(query.since) if query.since is not None else None
    last = partition_of(query.until - _TICK) if query.until is not None else None  # until is exclusive
    return first, last


def is_empty(query: AuditQuery) -> bool:
    """True when the time range selects nothing (until at or before since)."""
    return query.since is not None and query.until is not None and query.until <= query.since


def matches(record: AuditRecord, query: AuditQuery) -> bool:
    """Whether `record` is selected by `query` (all filters combined with AND)."""
    at_text = format_at(record.at)
    if query.since is not None and at_text < format_at(query.since):
        return False
    if query.until is not None and at_text >= format_at(query.until):
        return False
    entry = record.entry
    for name in EXACT_FILTERS:
        wanted = getattr(query, name)
        if wanted is not None and getattr(entry, name) != wanted:
            return False
    if query.device is not None:
        key = device_key(query.device)
        if all(device_key(getattr(entry, name)) != key for name in DEVICE_FIELDS):
            return False
    return True
