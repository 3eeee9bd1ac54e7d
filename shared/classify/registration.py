"""Where a device stands in registration, and which side (AD or Entra) can change a hybrid object.

The one place the pending definition and its neighbours live, so the scan, the worker's gates and the
diagnosis agree. Sources:
- Pending: Microsoft Learn, "Pending devices in Microsoft Entra ID": Entra Connect synced the computer
  object (trustType ServerAd) but the device never completed registration with the Device Registration
  Service, so the object has no alternativeSecurityIds at all. registrationDateTime null is supporting
  evidence only.
- A ServerAd object whose alternativeSecurityIds hold keys none of which decodes to `X509:` is not
  pending by that definition. The X509-prefix test is a community heuristic, not Microsoft's rule, so such
  an object is `registration_unclear`: reported, never acted on (sources are silent; writing nothing is
  the outcome that writes less).
- Sync cannot carry a change: Microsoft Learn, "Manage stale devices in Microsoft Entra ID": hybrid
  Windows 10+ devices are disabled or deleted in on-prem AD and synced; objects that are no longer synced
  (onPremisesSyncEnabled false, or null = never synced) and down-level Windows 7/8.1 hybrid devices must
  be cleaned up in Entra directly, because sync will never carry a change to them.
"""

from __future__ import annotations

import base64
import binascii

from shared.models import AlternativeSecurityId, Device

HYBRID_TRUST_TYPE = "ServerAd"
_X509_PREFIX = "X509:"
#: Windows 7 is 6.1, Windows 8.1 is 6.3: down-level hybrid joins that sync does not manage in Entra.
_DOWN_LEVEL_MAJOR = "6."


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


def is_hybrid(device: Device) -> bool:
    return device.trust_type == HYBRID_TRUST_TYPE


def is_pending(device: Device) -> bool:
    """Microsoft's pending definition: ServerAd, synced (onPremisesSyncEnabled true), no alternativeSecurityIds."""
    return is_hybrid(device) and device.on_premises_sync_enabled is True and not device.alternative_security_ids


def is_registration_unclear(device: Device) -> bool:
    """ServerAd with keys, none of which decodes to X509: neither pending nor shown to be registered."""
    return is_hybrid(device) and bool(device.alternative_security_ids) and not has_x509_key(device.alternative_security_ids)


def is_down_level(device: Device) -> bool:
    """Windows 7 / 8.1 (operatingSystemVersion 6.x): down-level hybrid join, not carried by sync."""
    os_name = (device.operating_system or "").strip().lower()
    return os_name.startswith("windows") and (device.operating_system_version or "").strip().startswith(_DOWN_LEVEL_MAJOR)


def sync_carries(device: Device) -> bool:
    """A change made in on-prem AD reaches this Entra object: synced hybrid, Windows 10 or later.

    Only then is "disable it in AD and let sync carry it" a real remediation; every other object, hybrid
    or not, is cleaned up in Entra directly (Microsoft Learn, "Manage stale devices").
    """
    return is_hybrid(device) and device.on_premises_sync_enabled is True and not is_down_level(device)
