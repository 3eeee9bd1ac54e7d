"""Issue 11, "Tests must show": an enforce run against the simulator, checked row by row against docs/safety.md.

The run uses the reference policy in enforce mode with `pending.action: delete` and the blast-radius limits
lifted, so only the rules and the gates stand between a device and a write. Every device is checked against
its population's row of the "Expected outcomes" table (read through the simulator's ground truth, never
through the project's rules): the write log, the request log and the device before and after the run must
show exactly the row's outcome. A failure names the rows that do not hold and one device for each.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import tags
from shared.audit import SqliteAuditLog
from shared.graph.gateway import GraphGateway
from shared.policy import policy_from_data
from shared.ports import AuditEntry, AuditQuery
from shared.queue import SqliteQueue
from shared.worker import Worker
from shared.worker.budget import SqliteBudget
from shared.worker.nightly import run_nightly
from simulator import Limits, Tenant, run_simulator
from simulator.devicestore import EXT_FIELD

NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
TAG = "extensionAttribute15"
WRITE_ROUTES = ("PATCH /devices", "DELETE /devices")


def enforce_policy(tenant: Tenant) -> dict[str, Any]:
    """The reference policy the table is written for: enforce, pending.action delete, limits lifted."""
    data = tenant.reference_policy()
    data["mode"] = "enforce"
    data["pending"] = {**data["pending"], "action": "delete"}
    data["limits"] = {"max_destructive_per_run": 100_000, "max_destructive_fraction": 0.5, "max_destructive_per_day": 100_000}
    data["notify"] = {"owners": True, "admins": [tenant.admin_upn], "digest": True}
    return data


@dataclass
class Run:
    run_id: str
    before: dict[str, dict[str, Any]]
    decisions: list[AuditEntry]
    request_log: dict[str, int]
    halted: bool


async def enforce(tenant: Tenant, tmp_path: Path) -> Run:
    """One nightly run (scan + worker) in enforce mode against the simulator, throttling off."""
    before = {oid: d for oid in tenant.object_ids() if (d := tenant.device_json(oid)) is not None}
    audit = SqliteAuditLog(tmp_path / "audit.sqlite3")
    queue = SqliteQueue(tmp_path / "queue.sqlite3", lock_seconds=120)
    budget = SqliteBudget(tmp_path / "budget.sqlite")
    try:
        async with run_simulator(tenant, limits=Limits.off()) as sim:
            graph = GraphGateway(sim.base_url, None)
            policy = policy_from_data(enforce_policy(tenant))
            worker = Worker(graph, audit, budget, policy, mail_sender=tenant.sender_upn, clock=lambda: tenant.now)
            try:
                result = await run_nightly(graph, queue, queue, audit, worker, now=tenant.now)
            finally:
                await graph.close()
            request_log = dict(sim.stats.by_path)
        query = AuditQuery(run_id=result.scan.run_id, kind="decision")
        decisions = [r.entry async for r in audit.iter_records(query)]
        return Run(result.scan.run_id, before, decisions, request_log, result.scan.halted)
    finally:
        await queue.close()
        await audit.close()
        await budget.close()


# --------------------------------------------------------------------------- what each outcome looks like


def _unchanged_but(before: dict[str, Any], after: dict[str, Any], *fields: str) -> str | None:
    """None when only `fields` (and the tag attribute, when listed) changed; else what else changed."""
    keep_ext = {k: v for k, v in before[EXT_FIELD].items() if k != TAG or "tag" not in fields}
    changed = [k for k in before if k not in (*fields, EXT_FIELD) and before[k] != after[k]]
    changed += [k for k, v in keep_ext.items() if after[EXT_FIELD][k] != v]
    return f"also changed {changed}" if changed else None


def check_device(outcome: str, before: dict[str, Any], after: dict[str, Any] | None, writes: list, run: Run) -> str | None:
    """What is wrong with this device after the run, measured against its row's outcome (None: nothing)."""
    deletes = [w for w in writes if w.method == "DELETE"]
    patches = [w for w in writes if w.method == "PATCH"]
    if outcome == "deleted":
        if after is not None or not any(w.status == 204 for w in deletes):
            return f"expected deleted; still there, writes {[(w.method, w.status) for w in writes]}"
        return None
    if after is None or deletes:
        return f"deleted, expected {outcome}"
    if outcome in ("no write", "notified on-prem"):
        if writes:
            return f"expected no write; got {[(w.method, w.body, w.status) for w in writes]}"
        if after != before:
            return "changed without a logged write"
        if outcome == "notified on-prem" and not _acted(run, before["id"], "notify_onprem"):
            return "no notify_onprem decision was acted on"
        return None
    tag = tags.parse(after[EXT_FIELD][TAG])
    if outcome == "disabled+tagged":
        if after["accountEnabled"] is not False or tag is None or tag.action != "disabled" or tag.run_id != run.run_id:
            return (
                f"expected disabled+tagged by this run; accountEnabled={after['accountEnabled']}, tag={after[EXT_FIELD][TAG]!r}"
            )
        return _unchanged_but(before, after, "accountEnabled", "tag")
    if any("accountEnabled" in (w.body or {}) for w in patches):
        return f"accountEnabled written, expected {outcome}"
    if outcome == "tagged":
        if tag is None or tag.action != "tagged" or tag.run_id != run.run_id:
            return f"expected our tagged marker from this run; tag={after[EXT_FIELD][TAG]!r}"
        return _unchanged_but(before, after, "tag")
    if outcome == "tag cleared":
        if after[EXT_FIELD][TAG] is not None or not patches:
            return f"expected the tag cleared; tag={after[EXT_FIELD][TAG]!r}, writes {len(patches)}"
        return _unchanged_but(before, after, "tag")
    raise AssertionError(f"unknown outcome {outcome!r}")


def _acted(run: Run, object_id: str, action: str) -> bool:
    return any(e.device_object_id == object_id and e.decision == "acted" and e.action == action for e in run.decisions)


def failures_by_row(tenant: Tenant, run: Run) -> dict[str, list[tuple[str, str]]]:
    """Population -> (object id, what went wrong) for every device whose row does not hold."""
    writes: defaultdict[str, list] = defaultdict(list)
    for w in tenant.write_attempts:
        writes[w.object_id].append(w)
    failed: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
    for oid, before in run.before.items():
        outcome = tenant.truth.expected_outcome(oid)
        assert outcome is not None
        problem = check_device(outcome, before, tenant.device_json(oid), writes[oid], run)
        if problem:
            failed[tenant.truth.archetype(oid)].append((oid, problem))
    return failed


def report(failed: dict[str, list[tuple[str, str]]], tenant: Tenant) -> str:
    rows = tenant.truth.expectations
    return "\n".join(
        f"{population} (expected {rows[population].cls} / {rows[population].outcome}): {len(cases)} devices, e.g. {cases[0]}"
        for population, cases in sorted(failed.items())
    )


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant.generate(devices=1200, seed=31, now=NOW)


@pytest.fixture(scope="module")
def run(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The one enforce run the row checks below read (its own event loop: the fixture outlives a test's loop)."""
    return asyncio.run(enforce(tenant, tmp_path_factory.mktemp("safety")))


def test_every_row_of_the_expected_outcomes_table_holds(tenant: Tenant, run: Run) -> None:
    assert not run.halted
    failed = failures_by_row(tenant, run)
    assert not failed, "rows that do not hold:\n" + report(failed, tenant)


def test_no_write_reaches_a_device_that_must_not_be_touched(tenant: Tenant, run: Run) -> None:
    """The hands-off rows on their own: the write log, the request log and the devices agree that none was written."""
    untouched = {oid for oid in run.before if tenant.truth.expected_outcome(oid) in ("no write", "notified on-prem")}
    assert untouched and {tenant.truth.archetype(o) for o in untouched} >= {
        "shared_iphone",
        "shared_win.older",
        "hostile_name.victim",
        "hostile_name.impostor",
        "foreign_tag",
        "registration_unclear",
        "special_profile",
        "janitor_expired.laps",
        "intune_active",
        "dup_young.old",
    }
    touched = sorted({w.object_id for w in tenant.write_attempts} & untouched)
    assert not touched, [
        (o, tenant.truth.archetype(o), [w.body for w in tenant.write_attempts if w.object_id == o]) for o in touched
    ]
    changed = [o for o in untouched if tenant.device_json(o) != run.before[o]]
    assert not changed, [(o, tenant.truth.archetype(o)) for o in changed]
    logged = sum(n for path, n in run.request_log.items() if path.startswith(WRITE_ROUTES))
    assert logged == len(tenant.write_attempts), "every PATCH/DELETE the simulator served is in the write log"


def test_every_device_that_should_be_handled_is_handled(tenant: Tenant, run: Run) -> None:
    handled = {oid for oid in run.before if tenant.truth.expected_outcome(oid) not in ("no write", "notified on-prem")}
    populations = {tenant.truth.archetype(o) for o in handled}
    assert populations >= {"unsynced_hybrid", "downlevel_hybrid", "reactivated.disabled_again", "pending_stuck", "dup2.old"}
    written = {w.object_id for w in tenant.writes}
    missed = sorted(handled - written)
    assert not missed, [(o, tenant.truth.archetype(o), tenant.truth.expected_outcome(o)) for o in missed]
    assert written <= handled, sorted(written - handled)


async def test_a_device_named_after_a_colleagues_active_pc_gets_no_write_and_neither_does_the_pc(tmp_path: Path) -> None:
    """Issue 11's reproduction: a user names a device after a colleague's PC that signed in 2 days ago."""
    tenant = Tenant.generate(devices=200, seed=37, now=NOW)  # a fleet around them, so no fraction limit can trip
    colleague, hostile = tenant.users[5], tenant.users[6]
    pairs = []
    for k, (pc_signed_in, hostile_registered) in enumerate(((2, 1), (40, 10))):  # at the desk / back from leave
        name = f"DESKTOP-FIN{k:03d}"
        pc = tenant.add_device(
            display_name=name,
            expected_class="healthy",
            last_sign_in=NOW - timedelta(days=pc_signed_in),
            registered_at=NOW - timedelta(days=400),
            owner=colleague.user_principal_name,
            physical_ids=[f"[GID]:g:{1000 + k}", f"[HWID]:h:{2000 + k}"],
            bitlocker_keys=1,
            intune_last_sync=NOW - timedelta(days=pc_signed_in),
        )
        impostor = tenant.add_device(
            display_name=name,
            expected_class="healthy",
            last_sign_in=NOW - timedelta(hours=2),
            registered_at=NOW - timedelta(days=hostile_registered),
            owner=hostile.user_principal_name,
            physical_ids=[f"[GID]:g:{3000 + k}", f"[HWID]:h:{4000 + k}"],
            intune_last_sync=NOW - timedelta(hours=3),
        )
        pairs.append((pc, impostor))
    result = await enforce(tenant, tmp_path)
    ids = {oid for pair in pairs for oid in pair}
    assert not result.halted
    assert [w for w in tenant.write_attempts if w.object_id in ids] == []
    assert all(tenant.device_json(oid) == result.before[oid] for oid in ids)
    assert not any(e.device_object_id in ids and e.action not in (None, "none", "report") for e in result.decisions)
