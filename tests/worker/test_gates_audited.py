"""Each gate stops a command on its own case, and the reason is in the command's audit decision."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from shared.policy import Policy
from shared.ports import Owner
from tests.worker.conftest import decisions_of, enforce, gate_of, records_of, run_one
from tests.worker.fakes import NOW, FakeGraph, command, device
from tests.worker.fakes import tagged as _tagged

_run, _gate = run_one, gate_of


async def test_kill_switch_blocks(make_worker, audit):
    dev = device("k1")
    graph = FakeGraph(dev)
    handled, entry = await _run(make_worker, audit, graph, command(dev), kill_switch=True)
    assert (handled.decision, entry.decision) == ("blocked", "blocked")
    assert "kill switch" in entry.reason and _gate(entry, "kill_switch")["passed"] is False
    assert graph.writes == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"approximateLastSignInDateTime": (NOW - timedelta(days=1)).isoformat()}, "signed in since the scan"),
        ({"displayName": "PC-renamed"}, "renamed"),
        (None, "no longer exists"),
    ],
)
async def test_state_changed_skips(make_worker, audit, change, words):
    scanned = device("s1")
    graph = FakeGraph(scanned)
    if change is None:
        graph.devices.clear()
    else:
        graph.devices["s1"] = device("s1", **change)
    _handled, entry = await _run(make_worker, audit, graph, command(scanned))
    assert entry.decision == "skipped" and entry.reason.startswith("state changed") and words in entry.reason
    assert graph.writes == []


async def test_re_enabled_expired_device_skips(make_worker, audit):
    scanned = _tagged("s2", 40)
    graph = FakeGraph(scanned)
    graph.devices["s2"] = msgspec.structs.replace(scanned, account_enabled=True)
    _, entry = await _run(make_worker, audit, graph, command(scanned, device_class="expired_disabled", action="delete"))
    assert entry.decision == "skipped" and "re-enabled" in entry.reason


async def test_protection_rechecked_blocks(make_worker, audit):
    scanned = device("p1")
    graph = FakeGraph(scanned)
    graph.groups["8d6c9c3e-5a7b-4f1e-9a51-2f0b6f7c1d11"] = {"p1"}
    policy = enforce(protect={"groups": ["8d6c9c3e-5a7b-4f1e-9a51-2f0b6f7c1d11"]})
    _, entry = await _run(make_worker, audit, graph, command(scanned), policy)
    assert entry.decision == "blocked" and "protected device" in entry.reason and "group" in entry.reason
    assert graph.writes == []


async def test_autopilot_blocks(make_worker, audit):
    dev = device("p2", physicalIds=["[ZTDID]:abc", "[HWID]:h:1"])
    graph = FakeGraph(dev)
    _, entry = await _run(make_worker, audit, graph, command(dev))
    assert entry.decision == "blocked" and "autopilot" in entry.reason


async def test_hybrid_gets_no_entra_write_but_onprem_notice(make_worker, audit):
    dev = device("h1", trustType="ServerAd", onPremisesSyncEnabled=True, operatingSystemVersion="10.0.19045.0")
    graph = FakeGraph(dev)
    policy = enforce(notify={"admins": ["ad-team@contoso.test"], "digest": False})
    _handled, entry = await _run(make_worker, audit, graph, command(dev), policy)
    assert entry.decision == "acted" and entry.action == "notify_onprem"
    assert "allows at most 'notify_onprem'" in _gate(entry, "plan")["reason"]  # the scan's own class table
    assert graph.writes == []
    assert [m[1] for m in graph.mails] == [["ad-team@contoso.test"]]
    assert "on-premises" in graph.mails[0][3] or "on-prem" in graph.mails[0][3]


async def test_non_windows_is_tagged_not_disabled(make_worker, audit):
    dev = device("i1", operatingSystem="iOS", trustType="Workplace")
    graph = FakeGraph(dev)
    graph.owners["i1"] = [Owner("u1", "Ann", "ann@contoso.test", "ann@contoso.test")]
    policy = enforce(notify={"digest": False})
    _, entry = await _run(make_worker, audit, graph, command(dev), policy)
    assert entry.decision == "acted" and entry.action == "tag"
    assert "allows at most 'tag'" in _gate(entry, "plan")["reason"]  # the scan's class table, applied to the snapshot
    [(method, _oid, body)] = graph.writes
    assert method == "PATCH" and "accountEnabled" not in body
    assert body["extensionAttributes"]["extensionAttribute15"].startswith("entra-janitor|tagged|")
    assert graph.mails[0][1] == ["ann@contoso.test"]


async def test_delete_blocked_by_bitlocker_keys(make_worker, audit):
    dev = _tagged("b1", 40)
    graph = FakeGraph(dev)
    graph.keys[dev.device_id] = ["key-1"]
    _, entry = await _run(make_worker, audit, graph, command(dev, device_class="expired_disabled", action="delete"))
    assert entry.decision == "blocked" and "BitLocker" in entry.reason
    assert graph.writes == []


async def test_bitlocker_allowed_by_policy(make_worker, audit):
    dev = _tagged("b2", 40)
    graph = FakeGraph(dev)
    graph.keys[dev.device_id] = ["key-1"]
    policy = enforce(gates={"allow_delete_with_bitlocker_keys": True})
    _, entry = await _run(make_worker, audit, graph, command(dev, device_class="expired_disabled", action="delete"), policy)
    assert entry.decision == "acted" and entry.action == "delete"
    assert graph.writes == [("DELETE", "b2", None)]


async def test_delete_blocked_by_recent_intune_sync(make_worker, audit):
    dev = _tagged("n1", 40)
    graph = FakeGraph(dev)
    graph.intune[dev.device_id] = NOW - timedelta(days=3)
    _, entry = await _run(make_worker, audit, graph, command(dev, device_class="expired_disabled", action="delete"))
    assert entry.decision == "blocked" and "Intune" in entry.reason
    assert graph.writes == []


@pytest.mark.parametrize(("days", "blocked"), [(10, True), (31, False)])
async def test_grace_period(make_worker, audit, days, blocked):
    dev = _tagged("g1", days)
    graph = FakeGraph(dev)
    _, entry = await _run(make_worker, audit, graph, command(dev, device_class="expired_disabled", action="delete"))
    if blocked:
        assert entry.decision == "blocked" and "deletes are allowed after 30 days" in entry.reason
        assert graph.writes == []
    else:
        assert entry.decision == "acted" and graph.writes == [("DELETE", "g1", None)]


async def test_ticket_delete_still_needs_grace_period(make_worker, audit):
    from shared.commands import TicketRef

    dev = device("t1")  # enabled, never disabled by us
    graph = FakeGraph(dev)
    cmd = command(dev, device_class="ticket", action="delete", trigger="ticket", snapshot=None,
                  ticket=TicketRef(source="generic", ticket_id="T-1", requested_by="helpdesk@contoso.test"))
    _, entry = await _run(make_worker, audit, graph, cmd)
    assert entry.decision == "blocked" and "not disabled by entra-janitor" in entry.reason
    assert graph.writes == []
    tickets = [r for r in await records_of(audit, cmd.command_id) if r.entry.kind == "ticket"]
    assert tickets and tickets[0].entry.decision == "blocked"


async def test_budget_defers_past_the_per_run_limit(make_worker, audit):
    devs = [device(f"d{i}") for i in range(3)]
    graph = FakeGraph(*devs)
    policy = enforce(limits={"max_destructive_per_run": 2})
    worker = make_worker(graph, policy)
    from shared.commands import encode

    outcomes = []
    for dev in devs:
        cmd = command(dev)
        await worker.handle(encode(cmd), message_id=cmd.command_id)
        outcomes.append((await decisions_of(audit, cmd.command_id))[0].entry)
    assert [e.decision for e in outcomes] == ["acted", "acted", "deferred"]
    assert "per-run budget of 2" in outcomes[2].reason
    assert len(graph.writes) == 2


async def test_report_mode_records_dry_run_with_full_plan(make_worker, audit):
    dev = device("r1")
    graph = FakeGraph(dev)
    graph.owners["r1"] = [Owner("u1", "Ann", "ann@contoso.test", "ann@contoso.test")]
    _, entry = await _run(make_worker, audit, graph, command(dev), Policy())
    assert entry.decision == "dry_run" and entry.action == "disable"
    assert entry.data["planned"][0]["method"] == "PATCH" and entry.data["planned"][0]["body"]["accountEnabled"] is False
    assert entry.data["notice"]["to"] == ["ann@contoso.test"]
    assert [g["name"] for g in entry.data["gates"]][-2:] == ["budget", "mode"]
    assert graph.writes == [] and graph.mails == []


async def test_report_only_class_is_skipped(make_worker, audit):
    dev = device("x1", approximateLastSignInDateTime=None)
    graph = FakeGraph(dev)
    _, entry = await _run(make_worker, audit, graph, command(dev, device_class="no_signin_record", action="report"))
    assert entry.decision == "skipped" and "report only" in entry.reason
    assert graph.writes == []


async def test_proposal_is_narrowed_never_widened(make_worker, audit):
    dev = device("w1")
    graph = FakeGraph(dev)
    _, entry = await _run(make_worker, audit, graph, command(dev, device_class="stale", action="delete"))
    assert entry.action == "disable" and "narrowed" in _gate(entry, "plan")["reason"]
    assert [w[0] for w in graph.writes] == ["PATCH"]


STUCK = {"stuck": True, "age_days": 30}  # what the scan's pending evidence says of a stuck object


async def test_pending_opt_in_delete_once_then_recreated_by_sync_is_reported(make_worker, audit):
    sid = "S-1-5-21-1000-2000-3000-4242"
    first = device("pend-1", trustType="ServerAd", alternativeSecurityIds=[], onPremisesSecurityIdentifier=sid,
                   displayName="HYB-0042", approximateLastSignInDateTime=None, onPremisesSyncEnabled=True)
    graph = FakeGraph(first)
    policy = enforce(pending={"action": "delete"}, notify={"admins": ["ad-team@contoso.test"], "digest": False})
    first_command = command(first, device_class="pending", action="delete", evidence=STUCK)
    _, entry = await _run(make_worker, audit, graph, first_command, policy)
    assert entry.decision == "acted" and entry.action == "delete" and graph.writes == [("DELETE", "pend-1", None)]

    back = device("pend-2", trustType="ServerAd", alternativeSecurityIds=[], onPremisesSecurityIdentifier=sid,
                  displayName="HYB-0042", approximateLastSignInDateTime=None, onPremisesSyncEnabled=True)  # synced back
    graph.devices["pend-2"] = back
    _, again = await _run(make_worker, audit, graph, command(back, device_class="pending", action="delete", run_id="run-2",
                                                                    evidence=STUCK),
                          policy)
    assert again.decision == "acted" and again.action == "notify_onprem"
    assert "re-created by sync: fix on-prem" in _gate(again, "recreated_by_sync")["reason"]
    assert "re-created by sync: fix on-prem" in again.reason
    assert len(graph.writes) == 1, "never deleted again"
    assert graph.mails[-1][1] == ["ad-team@contoso.test"] and "dsregcmd /leave" in graph.mails[-1][3]


async def test_digest_sends_one_message_per_recipient_per_run(make_worker, audit):
    devs = [device(f"dg{i}") for i in range(3)]
    graph = FakeGraph(*devs)
    for dev in devs:
        graph.owners[dev.id] = [Owner(f"u-{dev.id}", "Owner", f"{dev.id}@contoso.test", f"{dev.id}@contoso.test")]
    policy = enforce(notify={"admins": ["admin@contoso.test"], "digest": True})
    worker = make_worker(graph, policy)
    from shared.commands import encode

    for dev in devs:
        cmd = command(dev)
        await worker.handle(encode(cmd), message_id=cmd.command_id)
    assert graph.mails == [], "digest mode holds the notices until the run's work is done"
    assert await worker.flush_digests() == 4
    by_recipient = {tuple(m[1]): m for m in graph.mails}
    assert set(by_recipient) == {("admin@contoso.test",), *((f"{d.id}@contoso.test",) for d in devs)}
    admin_body = by_recipient[("admin@contoso.test",)][3]
    assert all(d.display_name in admin_body for d in devs) and "How to undo" in admin_body
