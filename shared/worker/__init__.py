"""The worker: gated, audited remediations of one RemediationCommand at a time (or many concurrently).

    from shared.worker import Worker, open_worker, drain
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from shared.worker.drain import DrainStats, drain
from shared.worker.handler import Handled, Worker, WorkerStats

if TYPE_CHECKING:
    from shared.policy import Policy
    from shared.ports import AuditLog, GraphPort
    from shared.worker.budget import BudgetStore

__all__ = ["DrainStats", "Handled", "Worker", "WorkerStats", "drain", "open_worker"]

LEASE_FILE = "leases.sqlite"


def open_worker(
    env: Mapping[str, str] | None = None,
    *,
    policy: Policy | None = None,
    graph: GraphPort | None = None,
    audit: AuditLog | None = None,
    budget: BudgetStore | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Worker:
    """A Worker wired from settings; anything passed in is used instead (tests, the demo, the CLI)."""
    from shared import bootstrap, settings
    from shared.policy import load_policy
    from shared.worker.budget import open_budget

    policy = policy or load_policy(None, env=env)
    kwargs: dict = {"clock": clock} if clock is not None else {}
    if settings.choice("QUEUE_BACKEND", ("sqlite", "servicebus"), env) == "sqlite":
        from shared.worker.lease import SqliteLease

        # several local `janitor work` processes share the embedded queue: a lease per command keeps two
        # deliveries of one command from acting at once (Service Bus: duplicate detection + lock renewal)
        kwargs["lease"] = SqliteLease(
            settings.data_dir(env) / LEASE_FILE, ttl=settings.number("QUEUE_LOCK_SECONDS", env, minimum=0.001)
        )
    return Worker(
        graph or bootstrap.graph(env),
        audit or bootstrap.audit_log(env),
        budget or open_budget(env),
        policy,
        mail_sender=settings.get("MAIL_SENDER", env),
        kill_switch=lambda: settings.flag("JANITOR_KILL_SWITCH", env),
        max_deliveries=int(settings.number("SERVICEBUS_MAX_DELIVERY_COUNT", env, minimum=1, integer=True)),
        **kwargs,
    )
