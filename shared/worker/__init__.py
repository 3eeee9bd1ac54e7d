"""The worker: gated, audited remediations of one RemediationCommand at a time (or many concurrently).

    from shared.worker import Worker, open_worker, drain
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.worker.drain import DrainStats, drain
from shared.worker.handler import Handled, Worker, WorkerStats

if TYPE_CHECKING:
    from shared.policy import Policy
    from shared.ports import AuditLog, GraphPort
    from shared.worker.budget import BudgetStore

__all__ = ["DrainStats", "Handled", "Worker", "WorkerStats", "drain", "open_worker"]

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
    from shared.keep.links import links_from_settings
    from shared.policy import load_policy
    from shared.worker.budget import open_budget
    from shared.worker.lease import open_lease

    policy = policy or load_policy(None, env=env)
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}  # else the Worker's own default
    return Worker(
        graph or bootstrap.graph(env),
        audit or bootstrap.audit_log(env),
        budget or open_budget(env),
        policy,
        # a lease per command keeps two deliveries of one command from acting at once, across the processes
        # of `janitor work` and across Function instances; it lives beside the budget
        lease=open_lease(env),
        keep_links=links_from_settings(env),  # none unless KEEP_LINK_SECRET and PUBLIC_BASE_URL are set
        mail_sender=settings.get("MAIL_SENDER", env),
        kill_switch=lambda: settings.flag("JANITOR_KILL_SWITCH", env),
        max_deliveries=int(settings.number("SERVICEBUS_MAX_DELIVERY_COUNT", env, minimum=1, integer=True)),
        **kwargs,
    )
