"""Hand-written devices for the rule tests: a healthy Entra joined Windows device, changed per test."""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.models import AlternativeSecurityId, Device, ExtensionAttributes

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
_ids = itertools.count(1)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def key_of(text: str) -> str:
    """An alternativeSecurityIds key as Graph sends it: base64 of UTF-16LE text."""
    return base64.b64encode(text.encode("utf-16-le")).decode()


X509 = AlternativeSecurityId(type=2, key=key_of("X509:<SHA1-TP-PUBKEY>0A1B2C3D4E5F"))


def device(**changes: Any) -> Device:
    """A healthy Entra joined, managed Windows device that signed in 5 days ago; `changes` override fields."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "device_id": f"11111111-0000-0000-0000-{n:012d}",
        "display_name": f"DESKTOP-{n:06d}",
        "account_enabled": True,
        "approximate_last_sign_in_date_time": days_ago(5),
        "registration_date_time": days_ago(400),
        "trust_type": "AzureAd",
        "operating_system": "Windows",
        "operating_system_version": "10.0.22631.3527",
        "is_managed": True,
        "physical_ids": [f"[HWID]:h:{6755416654410000 + n}"],  # every device its own hardware unless a test says so
        "alternative_security_ids": [X509],
        "extension_attributes": ExtensionAttributes(),
    }
    fields.update(changes)
    return Device(**fields)


def hybrid(**changes: Any) -> Device:
    """A registered hybrid joined device, synced by Entra Connect (has its X509 key)."""
    return device(**{"trust_type": "ServerAd", "on_premises_sync_enabled": True, **changes})


def tagged(days: float, *, attribute: int = 15, action: str = "disabled") -> ExtensionAttributes:
    stamp = days_ago(days).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ExtensionAttributes(**{f"extension_attribute{attribute}": f"entra-janitor|{action}|{stamp}|stale|run-1"})
