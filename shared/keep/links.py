"""Keep links in owner notices: where they point, how long they work, and the link for one device and owner.

A link is made only when both KEEP_LINK_SECRET and PUBLIC_BASE_URL are set (none otherwise: a notice never
carries a link that cannot work). PUBLIC_BASE_URL must be https, except on a loopback host (local runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from shared import settings
from shared.errors import ConfigError
from shared.keep.token import make_token, secret_from_settings

#: The path of the keep endpoint under the app (functions/keep.py).
KEEP_PATH = "/api/keep/"


@dataclass(frozen=True, slots=True)
class KeepLinks:
    """Makes the keep link of one device for one owner."""

    secret: bytes
    base_url: str  # https://<app>.azurewebsites.net (no trailing slash)

    def link(self, device_object_id: str, owner_id: str, now: datetime, link_days: int) -> str:
        """The link, valid for `link_days` from `now`."""
        token = make_token(self.secret, device_object_id, owner_id, now + timedelta(days=link_days))
        return f"{self.base_url}{KEEP_PATH}{token}"


def base_url_from_settings(env: Mapping[str, str] | None = None) -> str | None:
    value = settings.get("PUBLIC_BASE_URL", env)
    if value is None:
        return None
    url = settings.url("PUBLIC_BASE_URL", env)
    parts = urlsplit(url)
    if parts.scheme != "https" and not settings.is_loopback_host(parts.hostname):
        raise ConfigError("PUBLIC_BASE_URL", f"must be an https URL (owners open it from mail), not {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("PUBLIC_BASE_URL", f"must be an origin only, such as https://<app>.azurewebsites.net, not {value!r}")
    return f"{parts.scheme}://{parts.netloc}"


def links_from_settings(env: Mapping[str, str] | None = None) -> KeepLinks | None:
    """The links the settings allow, or None when KEEP_LINK_SECRET or PUBLIC_BASE_URL is unset."""
    secret = secret_from_settings(env)
    base = base_url_from_settings(env)
    if secret is None or base is None:
        return None
    return KeepLinks(secret, base)
