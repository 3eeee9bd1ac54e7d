"""`X-Janitor-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 of "<t>.<raw body>" with the webhook secret.

The same scheme authenticates ticket webhooks coming in and signs the result callbacks going out. A
timestamp outside the 5-minute window is refused so a captured request cannot be replayed later, and the
comparison is constant-time. Why a signature failed is kept for the server log, never told to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from shared import settings
from shared.errors import ConfigError, JanitorError

HEADER = "X-Janitor-Signature"
TOLERANCE_SECONDS = 300
MIN_SECRET_LENGTH = 32
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(JanitorError):
    """The request is not authentic. The message is for the log only (callers get a bare 401)."""


def _secret(name: str, value: str) -> bytes:
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(name, f"must be at least {MIN_SECRET_LENGTH} characters (generate a random one)")
    return value.encode()


def webhook_secret(env: Mapping[str, str] | None = None) -> bytes:
    """WEBHOOK_SECRET as bytes; ConfigError when missing or too short to be a real secret."""
    return _secret("WEBHOOK_SECRET", settings.require("WEBHOOK_SECRET", env))


def request_id_key(env: Mapping[str, str] | None = None) -> bytes:
    """The key of ticket request ids: TICKET_ID_SECRET, else one derived from WEBHOOK_SECRET (never that secret
    itself). Whoever holds the webhook secret can already learn an id by resubmitting its ticket; nobody else
    can compute one from a ticket number."""
    own = settings.get("TICKET_ID_SECRET", env)
    if own is not None:
        return _secret("TICKET_ID_SECRET", own)
    return hmac.new(webhook_secret(env), b"entra-janitor ticket request ids v1", hashlib.sha256).digest()


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(secret: bytes, header: str | None, body: bytes, *, now: float, tolerance: int = TOLERANCE_SECONDS) -> int:
    """Check the header against the raw body; returns its timestamp. Raises SignatureError saying why."""
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:  # "²".isdigit() is True
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        raise SignatureError(f"malformed {HEADER} header (expected t=<unix>,v1=<hex>)")
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"timestamp {timestamp} is outside the {tolerance}s window (now {int(now)})")
    expected = _mac(secret, timestamp, body)
    matched = False
    for candidate in candidates:  # every candidate is compared: the time taken does not depend on which matched
        matched |= bool(_HEX64.match(candidate)) and hmac.compare_digest(candidate, expected)
    if not matched:
        raise SignatureError("signature does not match the body")
    return timestamp
