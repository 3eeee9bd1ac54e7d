"""Issue 11 through the worker: what reaches Graph, what is mailed, and what the audit decision says."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from shared.commands import encode
from shared.models import Device
from shared.policy import Policy
from shared.ports import Owner
from shared.worker import records
from tests.worker.conftest import enforce, gate_of, records_of, run_one
from tests.worker.fakes import NON_WINDOWS_PATCH, NOW, FakeGraph, command, device, tagged

CLEARED = {"extensionAttributes": {"extensionAttribute15": None}}
MAIL_POLICY = {"admins": ["it@contoso.test"], "digest": False}


def _reactivated(object_id: str, **fields) -> Device:
    """Our disable tag from 40 days ago on a device enabled again and used 3 days ago."""
    fields.setdefault("approximateLastSignInDateTime", (NOW - timedelta(days=3)).isoformat())
    return tagged(object_id, 40, accountEnabled=True, **fields)


def _owned(graph: FakeGraph, dev: Device) -> None:
    graph.owners[dev.id] = [Owner("u1", "Ann", "ann@contoso.test", "ann@contoso.test")]


async def test_a_foreign_tag_value_gets_no_write_and_no_mail(make_worker, audit):
    dev = device("f1", extensionAttributes={"extensionAttribute15": "CA-Kiosk-Ring1"})
    graph = FakeGraph(dev)
    _owned(graph, dev)
    handled, entry = await run_one(make_worker, audit, graph, command(dev), enforce(notify=MAIL_POLICY))
    assert (handled.decision, entry.decision) == ("blocked", "blocked")
    assert 'extensionAttribute15 holds "CA-Kiosk-Ring1"' in entry.reason
    assert graph.writes == [] and graph.mails == [], "used to be disabled with the value overwritten"


async def test_clear_tag_removes_our_tag_and_mails_nobody(make_worker, audit):
    dev = _reactivated("c1")
    graph = FakeGraph(dev)
    _owned(graph, dev)
    cmd = command(dev, device_class="reactivated", action="clear_tag")
    _, entry = await run_one(make_worker, audit, graph, cmd, enforce(notify=MAIL_POLICY))
    assert (entry.decision, entry.action, entry.reason) == ("acted", "clear_tag", "tag cleared")
    assert graph.writes == [("PATCH", "c1", CLEARED)] and graph.mails == []
    assert graph.devices["c1"].extension_attributes.get(15) is None
    intent = next(r.entry for r in await records_of(audit, cmd.command_id) if r.entry.kind == "intent")
    assert intent.data["planned"] == [{"method": "PATCH", "url": "/devices/c1", "body": CLEARED}]


async def test_clear_tag_on_a_hybrid_object_sync_carries_is_done_in_entra(make_worker, audit):
    dev = _reactivated("c2", trustType="ServerAd", onPremisesSyncEnabled=True, operatingSystemVersion="10.0.19045.0")
    graph = FakeGraph(dev)
    _, entry = await run_one(make_worker, audit, graph, command(dev, device_class="reactivated", action="clear_tag"))
    assert entry.decision == "acted" and entry.action == "clear_tag" and graph.writes == [("PATCH", "c2", CLEARED)]


async def test_clear_tag_in_report_mode_is_a_dry_run(make_worker, audit):
    dev = _reactivated("c3")
    graph = FakeGraph(dev)
    _owned(graph, dev)
    _, entry = await run_one(make_worker, audit, graph, command(dev, device_class="reactivated", action="clear_tag"),
                             Policy())
    assert entry.decision == "dry_run" and entry.action == "clear_tag"
    assert entry.data["planned"] == [{"method": "PATCH", "url": "/devices/c3", "body": CLEARED}]
    assert "notice" not in entry.data and graph.writes == []


async def test_clear_tag_after_a_crash_is_reconciled_or_done_again(make_worker, audit):
    dev = _reactivated("c4")
    graph = FakeGraph(dev)
    cmd = command(dev, device_class="reactivated", action="clear_tag")
    planned = [{"method": "PATCH", "url": "/devices/c4", "body": CLEARED}]
    await audit.append(records.intent_entry(cmd, "clear_tag", [], planned, dev))  # crashed after the intent

    # the write did not go out: gated afresh and written once
    handled = await make_worker(graph).handle(encode(cmd), message_id=cmd.command_id)
    assert handled.decision == "acted" and graph.writes == [("PATCH", "c4", CLEARED)]

    # the write went out, its outcome was lost: reconciled without writing again
    again = command(dev, device_class="reactivated", action="clear_tag", run_id="run-2")
    await audit.append(records.intent_entry(again, "clear_tag", [], planned, dev))
    handled = await make_worker(graph).handle(encode(again), message_id=again.command_id)
    assert handled.decision == "acted" and "reconciled" in handled.reason
    assert len(graph.writes) == 1


async def test_tags_and_clear_tags_spend_the_budget_and_mails_do_not(make_worker, audit):
    phones = [device(f"t{i}", operatingSystem="iOS", trustType="Workplace") for i in range(2)]
    back = [_reactivated(f"r{i}") for i in range(2)]
    hybrid = [device(f"o{i}", trustType="ServerAd", onPremisesSyncEnabled=True, operatingSystemVersion="10.0.1")
              for i in range(2)]
    graph = FakeGraph(*phones, *back, *hybrid)
    worker = make_worker(graph, enforce(limits={"max_destructive_per_run": 1}, notify=MAIL_POLICY))
    decided = {}
    for run, devs, cls, action in (("run-t", phones, "stale", "disable"), ("run-r", back, "reactivated", "clear_tag"),
                                   ("run-o", hybrid, "stale", "disable")):
        for dev in devs:
            cmd = command(dev, device_class=cls, action=action, run_id=run)
            decided[dev.id] = (await worker.handle(encode(cmd), message_id=cmd.command_id)).decision
    assert decided == {"t0": "acted", "t1": "deferred", "r0": "acted", "r1": "deferred", "o0": "acted", "o1": "acted"}
    assert len(graph.writes) == 2, "one tag and one clear_tag; the on-prem notices wrote nothing"


async def test_a_hybrid_object_sync_cannot_carry_is_disabled_in_entra(make_worker, audit):
    dev = device("h1", trustType="ServerAd", onPremisesSyncEnabled=False, operatingSystemVersion="10.0.19045.0")
    graph = FakeGraph(dev)
    _, entry = await run_one(make_worker, audit, graph, command(dev))
    assert entry.decision == "acted" and entry.action == "disable", "used to be an on-prem notice sync never carries"
    [(method, _, body)] = graph.writes
    assert method == "PATCH" and body["accountEnabled"] is False
    assert body["extensionAttributes"]["extensionAttribute15"].startswith("entra-janitor|disabled|")
    assert "no longer synced" in gate_of(entry, "hybrid")["reason"]


async def test_a_down_level_hybrid_object_is_deleted_after_the_grace_period(make_worker, audit):
    dev = tagged("h2", 40, trustType="ServerAd", onPremisesSyncEnabled=True, operatingSystemVersion="6.1.7601")
    graph = FakeGraph(dev)
    _, entry = await run_one(make_worker, audit, graph, command(dev, device_class="expired_disabled", action="delete"))
    assert entry.decision == "acted" and graph.writes == [("DELETE", "h2", None)]


async def test_a_windows_laps_password_blocks_the_delete(make_worker, audit):
    dev = tagged("l1", 40)
    graph = FakeGraph(dev)
    graph.laps.add(dev.device_id)
    cmd = command(dev, device_class="expired_disabled", action="delete")
    _, entry = await run_one(make_worker, audit, graph, cmd)
    assert entry.decision == "blocked" and "Windows LAPS password" in entry.reason and graph.writes == []
    allowed = command(dev, device_class="expired_disabled", action="delete", run_id="run-2")
    _, entry = await run_one(make_worker, audit, graph, allowed, enforce(gates={"allow_delete_with_laps": True}))
    assert entry.decision == "acted" and graph.writes == [("DELETE", "l1", None)]


async def test_the_worker_reads_intune_for_every_write_and_laps_only_for_deletes(make_worker, audit):
    dev = device("i1")
    graph = FakeGraph(dev)
    graph.intune[dev.device_id] = NOW - timedelta(days=3)
    _, entry = await run_one(make_worker, audit, graph, command(dev))
    assert entry.decision == "blocked" and "checked in with Intune 3 days ago" in entry.reason
    assert "retire it in Intune first" in entry.reason and graph.writes == [], "a recent check-in used to be disabled"
    assert graph.lookups == [("intune", dev.device_id)]


async def test_a_non_windows_tag_is_blocked_by_a_recent_intune_check_in(make_worker, audit):
    dev = device("i2", operatingSystem="Android", trustType="Workplace")
    graph = FakeGraph(dev)
    graph.intune[dev.device_id] = NOW - timedelta(days=1)
    _, entry = await run_one(make_worker, audit, graph, command(dev))
    assert (entry.decision, entry.action) == ("blocked", "tag") and graph.writes == []


async def test_signed_in_after_our_tag_is_never_deleted(make_worker, audit):
    dev = tagged("g1", 60, approximateLastSignInDateTime=(NOW - timedelta(days=10)).isoformat())
    graph = FakeGraph(dev)
    _, entry = await run_one(make_worker, audit, graph, command(dev, device_class="expired_disabled", action="delete"))
    assert entry.decision == "blocked" and "signed in after the entra-janitor tag" in entry.reason
    assert graph.writes == []


class OsMismatchGraph(FakeGraph):
    """Reads show the device as Windows; Graph's own check finds it is not (its 400 is what is tested)."""

    async def get_device(self, object_id: str) -> Device | None:
        dev = await super().get_device(object_id)
        return None if dev is None else msgspec.structs.replace(dev, operating_system="Windows")


async def test_graph_refusing_a_non_windows_disable_is_a_permanent_clear_failure(make_worker, audit):
    stored = device("w1", operatingSystem="macOS", trustType="Workplace")
    graph = OsMismatchGraph(stored)
    seen = msgspec.structs.replace(stored, operating_system="Windows")
    handled, entry = await run_one(make_worker, audit, graph, command(seen))
    assert (handled.settle, entry.decision) == ("dead_letter", "failed")
    assert entry.reason.startswith("Graph refused the disable for good (400 Request_BadRequest; no permission")
    assert "extensionAttribute1..15" in entry.reason and NON_WINDOWS_PATCH in entry.reason
    assert "grant" not in entry.reason.lower(), "no permission would help: the reason must not ask for one"
    assert graph.mails == [] and graph.devices["w1"] == stored
