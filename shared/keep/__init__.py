"""The owner's keep link: a signed, expiring link in notices; GET shows the device, POST keeps it.

    from shared.keep import KeepService, shared_keep_service, links_from_settings
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.keep.links import KeepLinks, links_from_settings
from shared.keep.records import kept_devices
from shared.keep.service import KeepAnswer, KeepService

__all__ = ["KeepAnswer", "KeepLinks", "KeepService", "kept_devices", "links_from_settings", "shared_keep_service"]


def shared_keep_service(env: Mapping[str, str] | None = None) -> KeepService:
    """The process's keep service over the process's clients (shared.bootstrap), built on first use."""
    from shared import bootstrap

    def build() -> KeepService:
        from shared.keep.token import secret_from_settings
        from shared.policy import load_policy

        return KeepService(
            secret=secret_from_settings(env),
            audit=bootstrap.shared_audit_log(),
            graph=bootstrap.shared_graph(),
            sender=bootstrap.shared_queue_sender(),
            policy=load_policy(None, env=env),
        )

    return bootstrap.shared("keep_service", build)
