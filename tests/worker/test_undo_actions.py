"""Undo through the worker: reenable, restore and clear_tag are gated writes; changed devices are skipped with the
reason; a delete's intent holds what a restore is checked against; an acted undo marks the decision undone."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from shared.actions import Action
from shared.commands import encode
from shared.ports import AuditQuery, DeletedDevice, Owner
from shared.tags import Tag
from shared.worker.core import Act, Facts, decide
from tests.worker.conftest import decisions_of, enforce, records_of, run_one
from tests.worker.fakes import NOW, FakeGraph, command, device

RUN = "run-0"


def disabled_by(run_id: str, object_id: str = "d1", **fields) -> object:
    tag = Tag("disabled", NOW - timedelta(days=3), "stale", run_id).render()
    fields.setdefault("accountEnabled", False)
    return device(object_id, extensionAttributes={"extensionAttribute15": tag}, **fields)


def undo_cmd(dev, action: str, run_id: str | None = RUN, **kw):
    undo = {"run_id": run_id, "command_id": "orig-cmd", "record_id": "2025-06-01:0000000007", "action": kw.pop("did", "disable")}
    undo.update(kw.pop("undo_extra", {}))
    return command(dev, action=action, trigger="undo", run_id=f"undo-{run_id}", device_class="undo",
                   evidence={"undo": undo, "requested_by": "admin@contoso.test"}, snapshot=kw.pop("snapshot", None), **kw)


def facts(cmd, current, action: Action, **kw) -> Facts:
    return Facts(command=cmd, action=action, plan_reason="undo requested", current=current, **kw)


# --------------------------------------------------------------------------- pure: decide


def test_reenable_of_a_device_still_as_the_run_left_it_patches_enabled_and_clears_the_tag() -> None:
    dev = disabled_by(RUN)
    verdict = decide(facts(undo_cmd(dev, "reenable"), dev, Action.REENABLE), enforce(), NOW)
    assert isinstance(verdict, Act)
    [call] = verdict.calls
    assert (call.method, call.url) == ("PATCH", "/devices/d1")
    assert call.body == {"accountEnabled": True, "extensionAttributes": {"extensionAttribute15": None}}
    assert {g["name"]: g["passed"] for g in verdict.gates}["undo_state"] is True


def test_reenable_skips_a_device_someone_changed_since_with_the_reason() -> None:
    cases = {
        "enabled again": disabled_by(RUN, accountEnabled=True),
        "tag is from run run-9": disabled_by("run-9"),
        "no longer on the device": device("d1", accountEnabled=False),
        "no longer exists": None,
    }
    for why, current in cases.items():
        cmd = undo_cmd(current or device("d1"), "reenable")
        verdict = decide(facts(cmd, current, Action.REENABLE), enforce(), NOW)
        assert not isinstance(verdict, Act), why
        assert verdict.decision == "skipped" and why in verdict.reason, (why, verdict.reason)


def test_restore_needs_the_device_in_deleted_items_and_names_the_ad_steps_for_hybrid() -> None:
    cloud, hybrid = device("c1"), device("h1", trustType="ServerAd")
    item = DeletedDevice(cloud, NOW - timedelta(days=2))
    ok = decide(facts(undo_cmd(cloud, "restore", did="delete", snapshot=cloud), None, Action.RESTORE, deleted=item),
                enforce(), NOW)  # fmt: skip
    assert isinstance(ok, Act) and ok.calls[0].method == "POST"
    assert ok.calls[0].url == "/beta/directory/deletedItems/c1/restore"
    assert "restorable until 2025-06-29" in {g["name"]: g["reason"] for g in ok.gates}["restorable"]
    refused = decide(facts(undo_cmd(hybrid, "restore", did="delete", snapshot=hybrid), None, Action.RESTORE),
                     enforce(), NOW)  # fmt: skip
    assert not isinstance(refused, Act) and refused.decision == "skipped"
    assert "not restorable in Entra" in refused.reason and "Active Directory Recycle Bin" in refused.reason
    purged = decide(facts(undo_cmd(cloud, "restore", did="delete", snapshot=cloud), None, Action.RESTORE), enforce(), NOW)
    assert not isinstance(purged, Act) and "not in deleted items" in purged.reason
    other = DeletedDevice(device("c1", deviceId="did-someone-else"), NOW)
    mismatch = decide(facts(undo_cmd(cloud, "restore", did="delete", snapshot=cloud), None, Action.RESTORE, deleted=other),
                      enforce(), NOW)  # fmt: skip
    assert not isinstance(mismatch, Act) and mismatch.decision == "blocked"
    exists = decide(facts(undo_cmd(cloud, "restore", did="delete", snapshot=cloud), cloud, Action.RESTORE), enforce(), NOW)
    assert not isinstance(exists, Act) and "the device exists" in exists.reason


def test_undo_is_a_write_the_kill_switch_and_report_mode_hold() -> None:
    dev = disabled_by(RUN)
    killed = decide(facts(undo_cmd(dev, "reenable"), dev, Action.REENABLE, kill_switch=True), enforce(), NOW)
    assert not isinstance(killed, Act) and killed.decision == "blocked"
    from shared.policy import policy_from_data
    from shared.worker.core import admit, needs_reservation
    from shared.worker.gates import Reservation

    report = policy_from_data({"mode": "report"})
    act = decide(facts(undo_cmd(dev, "reenable"), dev, Action.REENABLE), report, NOW)
    assert isinstance(act, Act) and needs_reservation(act)  # counts against the write budget
    granted = Reservation(True, 1, 1, 10, 10)
    assert admit(act, granted, report).decision == "dry_run"
    spent = Reservation(False, 10, 10, 10, 10, scope="run")
    assert admit(act, spent, enforce()).decision == "deferred"


def test_protection_never_holds_a_put_back() -> None:
    dev = disabled_by(RUN, physicalIds=["[ZTDID]:autopilot-1"])
    verdict = decide(facts(undo_cmd(dev, "reenable"), dev, Action.REENABLE), enforce(), NOW)
    assert isinstance(verdict, Act)


def test_a_hybrid_device_entra_janitor_disabled_is_re_enabled_in_entra() -> None:
    dev = disabled_by(RUN, trustType="ServerAd", onPremisesSyncEnabled=False)
    verdict = decide(facts(undo_cmd(dev, "reenable"), dev, Action.REENABLE), enforce(), NOW)
    assert isinstance(verdict, Act) and verdict.action is Action.REENABLE


# --------------------------------------------------------------------------- the shell, over the Graph fake


async def test_an_acted_reenable_records_intent_outcome_decision_and_marks_the_original_undone(make_worker, audit) -> None:
    dev = disabled_by(RUN)
    graph = FakeGraph(dev)
    cmd = undo_cmd(dev, "reenable")
    handled, decision = await run_one(make_worker, audit, graph, cmd)
    assert handled.decision == "acted" and decision.action == "reenable"
    after = graph.devices["d1"]
    assert after.account_enabled is True and after.extension_attributes.extension_attribute15 is None
    kinds = [r.entry.kind for r in await records_of(audit, cmd.command_id)]
    assert kinds == ["intent", "outcome", "decision"]
    for record in await records_of(audit, cmd.command_id):
        assert record.entry.data["undoes"]["record_id"] == "2025-06-01:0000000007"
    [mark] = [r async for r in audit.iter_records(AuditQuery(command_id="orig-cmd"))]
    assert (mark.entry.kind, mark.entry.decision, mark.entry.action, mark.entry.run_id) == ("undo", "undone", "disable", RUN)
    assert mark.entry.data["undo_command_id"] == cmd.command_id and mark.entry.actor == "admin@contoso.test"


async def test_a_skipped_undo_leaves_no_mark_and_writes_nothing(make_worker, audit) -> None:
    dev = disabled_by(RUN, accountEnabled=True)
    graph = FakeGraph(dev)
    handled, decision = await run_one(make_worker, audit, graph, undo_cmd(dev, "reenable"))
    assert handled.decision == "skipped" and "enabled again" in decision.reason
    assert graph.writes == []
    assert [r async for r in audit.iter_records(AuditQuery(command_id="orig-cmd"))] == []


async def test_a_delete_intent_holds_the_device_its_owners_and_its_groups(make_worker, audit) -> None:
    dev = device("d2", accountEnabled=False,
                 extensionAttributes={"extensionAttribute15": Tag("disabled", NOW - timedelta(days=60), "stale",
                                                                  "run-a").render()})  # fmt: skip
    graph = FakeGraph(dev)
    graph.owners["d2"] = [Owner("u1", "Ana", "ana@contoso.test", "ana@contoso.test")]
    graph.device_member_of["d2"] = {"g-finance", "g-laptops"}
    cmd = command(dev, device_class="expired_disabled", action="delete", evidence={"disabled_days": 60})
    handled, _ = await run_one(make_worker, audit, graph, cmd)
    assert handled.decision == "acted" and "d2" in graph.deleted
    [intent] = [r for r in await records_of(audit, cmd.command_id) if r.entry.kind == "intent"]
    snapshot = intent.entry.data["snapshot"]
    assert snapshot["device"] == msgspec.to_builtins(dev)
    assert snapshot["owners"] == [{"id": "u1", "userPrincipalName": "ana@contoso.test", "displayName": "Ana"}]
    assert sorted(g["id"] for g in snapshot["groups"]) == ["g-finance", "g-laptops"]


async def test_restore_brings_a_deleted_cloud_device_back_and_names_the_groups_to_add_back(make_worker, audit) -> None:
    dev = device("d3")
    graph = FakeGraph()
    graph.deleted["d3"] = DeletedDevice(dev, NOW - timedelta(days=1))
    graph.device_member_of["d3"] = {"g-laptops"}  # g-finance did not come back
    groups = [{"id": "g-finance", "displayName": "Finance"}, {"id": "g-laptops", "displayName": "Laptops"}]
    cmd = undo_cmd(dev, "restore", did="delete", snapshot=dev, undo_extra={"groups": groups})
    handled, decision = await run_one(make_worker, audit, graph, cmd)
    assert handled.decision == "acted" and graph.devices["d3"].is_compliant is False
    assert "not back in 1 group(s)" in decision.reason and "Finance" in decision.reason
    [outcome] = [r for r in await records_of(audit, cmd.command_id) if r.entry.kind == "outcome"]
    assert outcome.entry.data["groups_missing"] == [{"id": "g-finance", "displayName": "Finance"}]
    assert outcome.entry.data["after"]["id"] == "d3" and outcome.entry.data["deleted_item"]["id"] == "d3"
    assert ("POST", "d3", None) in graph.writes


async def test_a_refused_restore_fails_with_graphs_reason(make_worker, audit) -> None:
    dev = device("d4")
    graph = FakeGraph()
    graph.deleted["d4"] = DeletedDevice(dev, NOW)
    graph.write_status = 403
    handled, decision = await run_one(make_worker, audit, graph, undo_cmd(dev, "restore", did="delete", snapshot=dev))
    assert handled.decision == "failed" and "Graph refused the restore" in decision.reason


async def test_a_redelivered_undo_is_not_done_twice(make_worker, audit) -> None:
    dev = disabled_by(RUN)
    graph = FakeGraph(dev)
    cmd = undo_cmd(dev, "reenable")
    worker = make_worker(graph)
    await worker.handle(encode(cmd), message_id=cmd.command_id)
    again = await worker.handle(encode(cmd), message_id=cmd.command_id, delivery_count=2)
    assert again.redelivered and len(graph.writes) == 1
    assert len(await decisions_of(audit, cmd.command_id)) == 1
