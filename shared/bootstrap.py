"""The one wiring place: builds the real adapters from settings, lazily, and caches the process's clients.

Entry points (functions/, the CLI) call these; tests pass their own adapters to the services instead.
Nothing is built at import time, so a bad setting never stops the Functions host from indexing.

`graph()`, `queue_sender()`, `audit_log()` build a new adapter the caller owns and closes. The `shared_*`
accessors return the process's one client of each kind (the Functions triggers use these, so a request
does not pay for a new client and a managed-identity token fetch): built on first use, keyed by the running
event loop (clients are bound to the loop that made them) and by the settings, closed by `close_shared()`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from shared.ports import AuditLog, GraphPort, QueueReceiver, QueueSender


class _Closable(Protocol):
    async def close(self) -> None: ...


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


# --------------------------------------------------------------------------- the process's clients


class _ProcessClients:
    """Clients built once per (event loop, settings); a new loop or a changed setting starts afresh."""

    def __init__(self) -> None:
        self._scope: tuple[Hashable, ...] | None = None
        self._items: dict[Hashable, object] = {}

    def get(self, key: Hashable, build: Callable[[], object]) -> object:
        scope = _scope()
        if scope != self._scope:
            self._items = {}  # clients of another loop cannot be reused (nor closed from this one)
            self._scope = scope
        if key not in self._items:
            self._items[key] = build()
        return self._items[key]

    async def close(self) -> None:
        items, self._items, self._scope = self._items, {}, None
        for item in reversed(list(items.values())):
            closer = getattr(item, "close", None)
            if closer is not None:
                await cast("_Closable", item).close()


def _scope() -> tuple[Hashable, ...]:
    from shared.settings import SETTINGS

    try:
        loop: int | None = id(asyncio.get_running_loop())
    except RuntimeError:
        loop = None
    return (loop, *(os.environ.get(s.name) for s in SETTINGS))


_CLIENTS = _ProcessClients()


def shared[T](key: Hashable, build: Callable[[], T]) -> T:
    """The process's client under `key`, built by `build` on first use in this loop and settings."""
    return cast("T", _CLIENTS.get(key, build))


async def close_shared() -> None:
    """Close every cached client (tests between runs, the CLI on exit, a worker shutting down)."""
    await _CLIENTS.close()


def shared_graph() -> GraphPort:
    return shared("graph", graph)


def shared_queue_sender() -> QueueSender:
    return shared("queue_sender", queue_sender)


def shared_audit_log() -> AuditLog:
    return shared("audit_log", audit_log)


def shared_credential(client_id: str | None) -> Any:
    """The Azure credential for Entra-authenticated Azure services, one per client id (one token cache)."""
    from shared.identity import build_credential

    return shared(("credential", client_id), lambda: build_credential(client_id))
