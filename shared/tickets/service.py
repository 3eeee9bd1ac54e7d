"""Wiring of the ticket webhook's dependencies from settings: built lazily, once per event loop and settings.

The HTTP functions and the CLI take their ports from here; tests build TicketIntake with fakes instead.
Keyed by the running loop because the Graph and queue clients are bound to the loop that created them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared import bootstrap
from shared.ports import AuditLog, GraphPort, QueueSender
from shared.settings import SETTINGS
from shared.tickets.callbacks import Delivery, allowlist_from_settings
from shared.tickets.intake import TicketConfig, TicketIntake
from shared.tickets.results import deliver_pending
from shared.tickets.signature import webhook_secret


class TicketService:
    """Lazily opened ports for the webhook: nothing is built until a request needs it."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env
        self._audit: AuditLog | None = None
        self._sender: QueueSender | None = None
        self._graph: GraphPort | None = None
        self._intake: TicketIntake | None = None

    def audit(self) -> AuditLog:
        if self._audit is None:
            self._audit = bootstrap.audit_log(self.env)
        return self._audit

    def graph(self) -> GraphPort:
        if self._graph is None:
            self._graph = bootstrap.graph(self.env)
        return self._graph

    def sender(self) -> QueueSender:
        if self._sender is None:
            self._sender = bootstrap.queue_sender(self.env)
        return self._sender

    def secret(self) -> bytes:
        return webhook_secret(self.env)

    def intake(self) -> TicketIntake:
        if self._intake is None:
            config = TicketConfig.from_settings(self.env)
            self._intake = TicketIntake(sender=self.sender(), audit=self.audit(), graph=self.graph(), config=config)
        return self._intake

    async def deliver_callbacks(self, now: datetime | None = None) -> list[Delivery]:
        """One pass of the callback outbox."""
        return await deliver_pending(
            self.audit(),
            secret=self.secret(),
            allowlist=allowlist_from_settings(self.env),
            now=now or datetime.now(UTC),
        )

    async def close(self) -> None:
        for port in (self._sender, self._graph, self._audit):
            if port is not None:
                await port.close()
        self._audit = self._sender = self._graph = self._intake = None


_SERVICES: dict[tuple[Any, ...], TicketService] = {}


def shared_service() -> TicketService:
    """The process-wide service for the current loop and settings (a changed setting gets a fresh one)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), tuple(os.environ.get(s.name) for s in SETTINGS))
    service = _SERVICES.get(key)
    if service is None:
        for stale in [k for k in _SERVICES if k[0] != id(loop) or k[1:] != key[1:]]:
            _SERVICES.pop(stale, None)  # clients of a closed loop cannot be reused (nor closed from here)
        service = _SERVICES[key] = TicketService()
    return service
