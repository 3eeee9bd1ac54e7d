"""The keep link's token: HMAC-SHA256 over the device's object id, the owner's object id and the expiry.

The token is the only protection of an anonymous endpoint, so it is strict: one version byte, the two ids as
16 bytes each, the expiry as 8 bytes (epoch seconds), then the full 32-byte MAC, base64url without padding
(98 characters). Anything else (another length, padding, another alphabet, another version) is malformed;
a MAC that does not match is tampered (a token for another device or owner is one: the MAC covers both);
a genuine token past its expiry is expired. The MAC is compared in constant time and checked before the
expiry is read, so an attacker learns nothing from which refusal comes back but that the MAC is wrong.
The key is KEEP_LINK_SECRET (a Key Vault reference in Azure), with a fixed domain-separation prefix so the
same secret can never produce a valid token of another kind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from shared import settings
from shared.errors import ConfigError

VERSION = 1
_DOMAIN = b"entra-janitor/keep-link/v1\x00"
_MAC_BYTES = 32
_BODY_BYTES = 1 + 16 + 16 + 8
TOKEN_CHARS = 98  # base64url of 73 bytes, unpadded
_ALPHABET = re.compile(r"[A-Za-z0-9_-]{98}")
#: Shortest secret accepted (characters).
MIN_SECRET_CHARS = 32


class KeepTokenRefused(Exception):
    """A token that does not grant anything, and why (malformed, tampered, expired)."""

    def __init__(self, why: str, status: int) -> None:
        super().__init__(why)
        self.why = why
        self.status = status


@dataclass(frozen=True, slots=True)
class KeepToken:
    """What a valid token grants: this owner may keep this device, until the link expires."""

    device_object_id: str
    owner_id: str
    expires: datetime

    @property
    def digest(self) -> str:
        """A short stable name of the token for the audit log (the token itself is never stored)."""
        text = f"{self.device_object_id}|{self.owner_id}|{int(self.expires.timestamp())}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def secret_from_settings(env: Mapping[str, str] | None = None) -> bytes | None:
    """KEEP_LINK_SECRET as a key, or None when unset (no links are made and none is accepted)."""
    value = settings.get("KEEP_LINK_SECRET", env)
    if value is None:
        return None
    if value.startswith("@Microsoft.KeyVault("):  # unresolved: the reference names the vault, it is no secret
        raise ConfigError(
            "KEEP_LINK_SECRET",
            "is an unresolved Key Vault reference: give the app's managed identity 'Key Vault Secrets User' on the "
            "secret and set the app's keyVaultReferenceIdentity to it (infra/ does both), then restart the app",
        )
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError("KEEP_LINK_SECRET", f"must be at least {MIN_SECRET_CHARS} characters, not {len(value)}")
    return value.encode()


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + body, hashlib.sha256).digest()


def make_token(secret: bytes, device_object_id: str, owner_id: str, expires: datetime) -> str:
    """A token for one device and one owner, valid until `expires` (whole seconds)."""
    stamp = int(expires.astimezone(UTC).timestamp())
    body = bytes([VERSION]) + uuid.UUID(device_object_id).bytes + uuid.UUID(owner_id).bytes + stamp.to_bytes(8, "big")
    return base64.urlsafe_b64encode(body + _mac(secret, body)).decode().rstrip("=")


def read_token(secret: bytes, token: str, now: datetime) -> KeepToken:
    """What a token grants, or KeepTokenRefused (404 malformed, 403 tampered, 410 expired)."""
    if not _ALPHABET.fullmatch(token):
        raise KeepTokenRefused("malformed", 404)
    try:
        raw = base64.urlsafe_b64decode(token + "==")
    except (binascii.Error, ValueError):
        raise KeepTokenRefused("malformed", 404) from None
    if len(raw) != _BODY_BYTES + _MAC_BYTES or base64.urlsafe_b64encode(raw).decode().rstrip("=") != token:
        raise KeepTokenRefused("malformed", 404)  # non-canonical encodings (stray bits in the last character)
    body, mac = raw[:_BODY_BYTES], raw[_BODY_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise KeepTokenRefused("tampered", 403)
    if body[0] != VERSION:
        raise KeepTokenRefused("malformed", 404)
    expires = datetime.fromtimestamp(int.from_bytes(body[33:41], "big"), UTC)
    if expires <= now:
        raise KeepTokenRefused("expired", 410)
    return KeepToken(str(uuid.UUID(bytes=body[1:17])), str(uuid.UUID(bytes=body[17:33])), expires)
