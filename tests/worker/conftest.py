"""Worker test helpers: a worker over the in-memory Graph fake and a real SQLite audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from shared.audit import SqliteAuditLog
from shared.policy import Policy, policy_from_data
from shared.ports import AuditQuery, AuditRecord
from shared.worker import Worker
from shared.worker.budget import MemoryBudget
from tests.worker.fakes import NOW, FakeGraph


def enforce(**sections) -> Policy:
    """An enforce-mode policy with the given sections (plain data, validated by the policy loader)."""
    return policy_from_data({"mode": "enforce", **sections})


@pytest.fixture
async def audit(tmp_path) -> AsyncIterator[SqliteAuditLog]:
    log = SqliteAuditLog(tmp_path / "audit.sqlite3")
    yield log
    await log.close()


@pytest.fixture
def make_worker(audit) -> Callable[..., Worker]:
    def make(graph: FakeGraph, policy: Policy | None = None, **kw) -> Worker:
        kw.setdefault("mail_sender", "janitor@contoso.test")
        kw.setdefault("clock", lambda: NOW)
        return Worker(graph, audit, kw.pop("budget", MemoryBudget()), policy or enforce(), **kw)

    return make


async def records_of(audit, command_id: str) -> list[AuditRecord]:
    return [r async for r in audit.iter_records(AuditQuery(command_id=command_id))]


async def decisions_of(audit, command_id: str) -> list[AuditRecord]:
    return [r for r in await records_of(audit, command_id) if r.entry.kind == "decision"]
