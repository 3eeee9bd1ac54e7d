"""The one wiring place: builds the real adapters from settings, lazily and once per process.

Entry points (functions/, the CLI) call these; tests pass their own adapters to the services instead.
Nothing is built at import time, so a bad setting never stops the Functions host from indexing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.ports import AuditLog, GraphPort, QueueReceiver, QueueSender


def graph(env: Mapping[str, str] | None = None) -> GraphPort:
    from shared.graph import build_gateway

    return build_gateway(env)


def queue_sender(env: Mapping[str, str] | None = None) -> QueueSender:
    from shared.queue import open_sender

    return open_sender(env)


def queue_receiver(env: Mapping[str, str] | None = None) -> QueueReceiver:
    from shared.queue import open_receiver

    return open_receiver(env)


def audit_log(env: Mapping[str, str] | None = None) -> AuditLog:
    from shared.audit import open_audit_log

    return open_audit_log(env)
