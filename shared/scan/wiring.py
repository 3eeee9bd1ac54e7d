"""Run the scan with the real adapters built from settings: what the timer trigger and `janitor scan` call."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from os import PathLike
from typing import Protocol

from shared import bootstrap
from shared.commands import Trigger
from shared.policy import load_policy
from shared.scan.service import ProgressCallback, run_scan
from shared.scan.summary import ScanSummary


class Closable(Protocol):
    async def close(self) -> None: ...


async def run_configured_scan(
    *,
    policy_path: str | PathLike[str] | None = None,
    trigger: Trigger = "nightly",
    progress: ProgressCallback | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ScanSummary:
    """Load the policy (file, else JANITOR_POLICY, else defaults), wire Graph, queue and audit log, scan, close.

    The policy is checked before anything is connected, so a bad policy fails fast with every problem listed.
    """
    policy = load_policy(policy_path, env=env)
    async with contextlib.AsyncExitStack() as stack:
        graph = bootstrap.graph(env)
        stack.push_async_callback(_close_quietly, graph)
        queue = bootstrap.queue_sender(env)
        stack.push_async_callback(_close_quietly, queue)
        audit = bootstrap.audit_log(env)
        stack.push_async_callback(_close_quietly, audit)
        return await run_scan(
            graph, queue, audit, policy, now=now or datetime.now(UTC), trigger=trigger, progress=progress, env=env
        )


async def _close_quietly(adapter: Closable) -> None:
    """A failure to close must not hide the scan's own result or error."""
    with contextlib.suppress(Exception):
        await adapter.close()
