"""Is a hybrid device *pending*? The one place that rule lives (it is unconfirmed against the portal).

Pending = Entra Connect synced the computer (trustType ServerAd) but the device never completed
registration with the Device Registration Service, so it has no certificate key: no alternativeSecurityIds
entry whose key decodes (base64 -> UTF-16LE) to text starting `X509:`.
"""

from __future__ import annotations

import base64
import binascii

from shared.models import AlternativeSecurityId, Device

HYBRID_TRUST_TYPE = "ServerAd"
_X509_PREFIX = "X509:"


def decode_key(key: str | None) -> str | None:
    """The text of an alternativeSecurityIds key, or None when it is not base64 of UTF-16LE text."""
    if not key:
        return None
    try:
        raw = base64.b64decode(key, validate=True)
        return raw.decode("utf-16-le")
    except (binascii.Error, ValueError):  # ValueError covers UnicodeDecodeError
        return None


def has_x509_key(ids: list[AlternativeSecurityId]) -> bool:
    """True when any entry's key decodes to `X509:...` (the device registered its certificate)."""
    for entry in ids:
        text = decode_key(entry.key)
        if text is not None and text.startswith(_X509_PREFIX):
            return True
    return False


def is_pending(device: Device) -> bool:
    """The pending rule: hybrid trust type and no registered X509 key (malformed keys do not count)."""
    return device.trust_type == HYBRID_TRUST_TYPE and not has_x509_key(device.alternative_security_ids)
