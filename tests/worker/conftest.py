"""Worker test helpers: a worker over the in-memory Graph fake and a real SQLite audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from shared.audit import SqliteAuditLog
from shared.commands import encode
from shared.policy import Policy, policy_from_data
from shared.ports import AuditEntry, AuditQuery, AuditRecord
from shared.worker import Handled, Worker
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


async def run_one(make_worker, audit, graph, cmd, policy: Policy | None = None, **kw) -> tuple[Handled, AuditEntry]:
    """Handle one command with a fresh worker; returns how it was settled and its one terminal decision."""
    worker = make_worker(graph, policy, **kw)
    handled = await worker.handle(encode(cmd), message_id=cmd.command_id)
    decisions = await decisions_of(audit, cmd.command_id)
    assert len(decisions) == 1, "exactly one terminal decision per command"
    return handled, decisions[0].entry


def gate_of(entry: AuditEntry, name: str) -> dict:
    """The record of one gate in a decision's data.gates."""
    return next(g for g in entry.data["gates"] if g["name"] == name)
