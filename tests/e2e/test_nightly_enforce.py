"""End to end against the simulator: scan, then work in enforce mode, checked against the ground truth.

Exactly the ground-truth candidates are written (disabled + tagged, tagged, tag cleared or deleted, as the
"Expected outcomes" table in docs/safety.md says); no protected device, and no hybrid device sync can carry a
change to, is written at all; no device holding BitLocker keys or an active Intune record is deleted; notices
land in the simulator's outbox addressed to the right people.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.audit import SqliteAuditLog
from shared.graph.gateway import GraphGateway
from shared.graph.pacer import WritePacer
from shared.policy import policy_from_data
from shared.ports import AuditQuery
from shared.queue import SqliteQueue
from shared.worker import Worker
from shared.worker.budget import SqliteBudget
from shared.worker.nightly import run_nightly
from simulator import Limits, Tenant, run_simulator

DEVICES = 2500
SEED = 23
FAST = Limits(write_budget=4000, write_window_s=2.0)


def _policy(tenant: Tenant, *, digest: bool) -> dict:
    data = tenant.reference_policy()
    data["mode"] = "enforce"
    data["limits"] = {"max_destructive_per_run": 10_000, "max_destructive_fraction": 0.5, "max_destructive_per_day": 10_000}
    data["notify"] = {"owners": True, "admins": [tenant.admin_upn], "digest": digest}
    return data


async def _nightly(tenant: Tenant, tmp_path, *, digest: bool = False):
    audit = SqliteAuditLog(tmp_path / "audit.sqlite3")
    queue = SqliteQueue(tmp_path / "queue.sqlite3", lock_seconds=120)
    budget = SqliteBudget(tmp_path / "budget.sqlite")
    try:
        async with run_simulator(tenant, limits=FAST) as sim:
            graph = GraphGateway(sim.base_url, None, pacer=WritePacer(FAST.write_budget, FAST.write_window_s))
            worker = Worker(graph, audit, budget, policy_from_data(_policy(tenant, digest=digest)),
                            mail_sender=tenant.sender_upn, clock=lambda: tenant.now)
            try:
                result = await run_nightly(graph, queue, queue, audit, worker, now=tenant.now)
            finally:
                await graph.close()
        decisions = [r.entry async for r in audit.iter_records(AuditQuery(run_id=result.scan.run_id, kind="decision"))]
        return result, decisions, queue.dead_letters()
    finally:
        await queue.close()
        await audit.close()
        await budget.close()


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant.generate(devices=DEVICES, seed=SEED, now=datetime(2025, 6, 1, 2, 0, tzinfo=UTC))


def _expected(tenant: Tenant) -> tuple[set[str], set[str], set[str]]:
    """What docs/safety.md's "Expected outcomes" table says an enforce run writes (via the simulator's truth).

    The table is written for `pending.action: delete`; this run keeps the default, so pending objects are not deleted.
    """
    truth = tenant.truth
    disable = set(truth.ids_with_outcome("disabled+tagged"))
    tag = set(truth.ids_with_outcome("tagged"))
    delete = {oid for oid in truth.ids_with_outcome("deleted") if truth.expected_class(oid) != "pending"}
    return disable, tag, delete


async def test_enforce_writes_exactly_the_ground_truth_candidates(tenant, tmp_path):
    flags_of = {oid: tenant.truth.flags(oid) for oid in tenant.object_ids()}  # the truth forgets deleted devices
    want_disable, want_tag, want_delete = _expected(tenant)
    result, decisions, dead = await _nightly(tenant, tmp_path)
    assert not result.scan.halted
    writes = list(tenant.writes)
    disabled = {w.object_id for w in writes if w.method == "PATCH" and (w.body or {}).get("accountEnabled") is False}
    cleared = {w.object_id for w in writes if w.method == "PATCH" and not w.body["extensionAttributes"]["extensionAttribute15"]}
    tagged = {w.object_id for w in writes if w.method == "PATCH" and "accountEnabled" not in (w.body or {})} - cleared
    deleted = {w.object_id for w in writes if w.method == "DELETE"}
    assert want_disable and want_delete, "the fleet must exercise disables and deletes"
    assert disabled == want_disable
    assert tagged == want_tag
    assert deleted == want_delete
    assert cleared == set(tenant.truth.ids_with_outcome("tag cleared"))
    assert len(writes) == len(disabled) + len(tagged) + len(cleared) + len(deleted), "each device written at most once"

    for w in writes:
        flags = flags_of[w.object_id]
        assert not flags & {"protected_group", "protected_name", "autopilot", "special_profile"}, (w.object_id, flags)
        assert "hybrid" not in flags or "unsynced_hybrid" in flags, (w.object_id, flags)  # sync carries the others
        if w.method == "DELETE":
            assert not flags & {"bitlocker", "intune_recent"}, (w.object_id, flags)
        if w.method == "PATCH" and w.object_id not in cleared:
            tag = w.body["extensionAttributes"]["extensionAttribute15"]
            assert tag.startswith("entra-janitor|") and result.scan.run_id in tag

    # one terminal decision per queued command; the delete gates left their reasons
    by_command: dict[str, int] = {}
    for entry in decisions:
        by_command[entry.command_id] = by_command.get(entry.command_id, 0) + 1
    assert len(by_command) == result.scan.commands_enqueued and set(by_command.values()) == {1}
    blocked = [e for e in decisions if e.decision == "blocked"]
    assert any("BitLocker" in e.reason for e in blocked) and any("Intune" in e.reason for e in blocked)
    assert dead == []
    assert not any(e.decision == "failed" for e in decisions)


async def test_notices_reach_owners_and_admins(tmp_path):
    tenant = Tenant.generate(devices=800, seed=5, now=datetime(2025, 6, 1, 2, 0, tzinfo=UTC))
    _result, decisions, _ = await _nightly(tenant, tmp_path)
    acted = [e for e in decisions if e.decision == "acted" and e.action in ("disable", "tag", "delete", "notify_onprem")]
    assert acted and tenant.outbox
    admin = tenant.admin_upn.lower()
    sent_to = [{str(r).lower() for r in _recipients(m)} for m in tenant.outbox]
    assert all(admin in recipients for recipients in sent_to)
    owned = [e for e in acted if e.action == "disable" and tenant.owner_of(e.device_object_id) is not None]
    assert owned
    for entry in owned:
        owner = tenant.owner_of(entry.device_object_id)
        address = (owner.mail or owner.user_principal_name).lower()
        assert any(address in recipients and entry.display_name in _text(m) for m, recipients in zip(tenant.outbox, sent_to,
                                                                                                     strict=True))
    onprem = [m for m in tenant.outbox if "dsregcmd" in _text(m)]
    assert onprem, "pending devices' notices carry the stage guidance"


def _recipients(mail: dict) -> list[str]:
    return [*mail["to"], *mail["cc"], *mail["bcc"]]


def _text(mail: dict) -> str:
    return f"{mail['subject']} {mail['body']}"
