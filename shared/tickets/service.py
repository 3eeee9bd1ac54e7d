"""Wiring of the ticket webhook's dependencies: the process's clients from shared.bootstrap, built on first use.

The HTTP functions and the CLI take their ports from here; tests build TicketIntake with fakes instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from shared import bootstrap
from shared.ports import AuditLog, GraphPort, QueueSender
from shared.tickets.callbacks import Delivery, allowlist_from_settings
from shared.tickets.intake import TicketConfig, TicketIntake
from shared.tickets.results import deliver_pending
from shared.tickets.signature import webhook_secret


class TicketService:
    """The webhook's dependencies: the process's shared clients (shared.bootstrap) and the settings."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env
        self._intake: TicketIntake | None = None

    def audit(self) -> AuditLog:
        return bootstrap.shared_audit_log()

    def graph(self) -> GraphPort:
        return bootstrap.shared_graph()

    def sender(self) -> QueueSender:
        return bootstrap.shared_queue_sender()

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
        """Close the process's clients (the CLI, when it is done)."""
        self._intake = None
        await bootstrap.close_shared()


def shared_service() -> TicketService:
    """The process's service (its clients are the process's, built once per loop and settings)."""
    return bootstrap.shared("ticket_service", TicketService)
