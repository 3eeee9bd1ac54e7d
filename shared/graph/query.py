"""OData query helpers (pure): quoting literals and spotting filters that need Graph's advanced queries."""

from __future__ import annotations

import re

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LITERAL = re.compile(r"'(?:[^']|'')*'")
# ne, not, endsWith, `eq null`, /$count, `in`, lambda any()/all(): Graph answers 400 to these on directory
# objects unless the request carries ConsistencyLevel: eventual and $count=true.
_ADVANCED = re.compile(r"\b(?:ne|not|endswith|in)\b|\beq\s+null\b|/\$count\b|/(?:any|all)\s*\(", re.IGNORECASE)


def is_guid(text: str) -> bool:
    return _GUID.fullmatch(text) is not None


def literal(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def needs_advanced_query(filter: str | None) -> bool:
    """True when the $filter uses an operator Graph serves only as an advanced query (string literals ignored)."""
    if not filter:
        return False
    return _ADVANCED.search(_LITERAL.sub("''", filter)) is not None
