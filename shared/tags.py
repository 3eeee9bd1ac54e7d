"""The extensionAttribute tag entra-janitor writes when it disables a device.

The tag is how a later scan knows a disabled device was disabled by us, when, and why (the
`expired_disabled` class). Format: ``entra-janitor|disabled|<ISO-8601 UTC>|<class>|<run id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "entra-janitor"
DEFAULT_ATTRIBUTE = 15  # extensionAttribute15; the policy may choose another (1-15)


@dataclass(frozen=True, slots=True)
class Tag:
    action: str  # "disabled" (or "tagged" for devices an app identity cannot disable)
    at: datetime
    reason: str  # the class that led to it
    run_id: str

    def render(self) -> str:
        stamp = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return "|".join((PREFIX, self.action, stamp, self.reason, self.run_id))


def parse(value: str | None) -> Tag | None:
    """The tag in an extensionAttribute value, or None when it is not ours or is malformed."""
    if not value or not value.startswith(PREFIX + "|"):
        return None
    parts = value.split("|")
    if len(parts) != 5:
        return None
    try:
        at = datetime.strptime(parts[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return Tag(action=parts[1], at=at, reason=parts[3], run_id=parts[4])
