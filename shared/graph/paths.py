"""Values placed in Graph URL paths: validated as a GUID or a user principal name, then encoded, here only.

A value from a ticket (`user`) or a store ends up in `/users/{id}/...` or `/devices/{id}`: `..` would walk
out of the resource (`/users/../registeredDevices` is `/registeredDevices`), `/` or `?` would add segments
or a query. Graph's keys are GUIDs and UPNs, so nothing else is let through; a value that is neither is an
object that cannot exist (InvalidPathSegment is a GraphNotFound), and no request is sent for it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from shared.errors import GraphNotFound

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: Entra UPNs: local part of A-Z a-z 0-9 ' . - _ ! # ^ ~ (no leading, trailing or doubled dot; guests carry
#: #EXT#), @, then a DNS domain. Nothing that means something in a path (/ ? % \ ..) can match.
_UPN = re.compile(
    r"(?=[^@]{1,64}@)(?!\.)(?!.*\.\.)[A-Za-z0-9'._!#^~-]+(?<!\.)@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+"
)
MAX_UPN_CHARS = 113


class InvalidPathSegment(GraphNotFound, ValueError):
    """A value that is not the key of any Graph object: refused before a request is built."""


def is_guid(value: str) -> bool:
    return _GUID.fullmatch(value) is not None


def is_user_key(value: str) -> bool:
    """A user's object id or UPN (what `/users/{key}` accepts)."""
    return is_guid(value) or (len(value) <= MAX_UPN_CHARS and _UPN.fullmatch(value) is not None)


def object_id(value: object, what: str = "object id") -> str:
    """A directory object id (GUID), for a request builder's path parameter."""
    if not isinstance(value, str) or not is_guid(value):
        raise InvalidPathSegment(f"not a {what} (a GUID): {str(value)[:80]!r}", status=404)
    return value


def user_key(value: object) -> str:
    """A user's object id or UPN, for a request builder's path parameter."""
    if not isinstance(value, str) or not is_user_key(value):
        raise InvalidPathSegment(f"not a user object id or UPN: {str(value)[:80]!r}", status=404)
    return value


def encode(segment: str) -> str:
    """Percent-encoded like the SDK's URI templates (RFC 6570) encode path parameters, for URLs built by hand."""
    return quote(segment, safe="")


def device_path(value: str) -> str:
    """`/devices/{id}` for a $batch request (its URLs are not built by the SDK)."""
    return f"/devices/{encode(object_id(value, 'device object id'))}"
