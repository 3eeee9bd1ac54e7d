"""run_scan over in-memory ports: one command per candidate, duplicates across pages, breaker, idempotence, failures."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from shared.classify import CLASS_NAMES, ClassifyContext, classify, propose_action, siblings_of
from shared.commands import decode
from shared.errors import AuditUnavailable, GraphError
from shared.models import DEVICE_SELECT, AlternativeSecurityId, Device
from shared.policy import Policy, parse_policy, policy_hash
from shared.scan import run_scan
from shared.scan.partitions import partitions_for
from tests.classify.devices import NOW, days_ago, device, hybrid, tagged
from tests.scan.fakes import FakeAudit, FakeGraph, FakeQueue

GROUP = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


def one_of_each() -> list[Device]:
    return [
        device(display_name="OK-1"),
        device(display_name="AP-1", physical_ids=["[ZTDID]:z"], approximate_last_sign_in_date_time=days_ago(300)),
        hybrid(display_name="PEND-1", alternative_security_ids=[], registration_date_time=days_ago(40)),
        hybrid(display_name="PEND-2", alternative_security_ids=[], registration_date_time=days_ago(2)),
        device(display_name="EXP-1", account_enabled=False, extension_attributes=tagged(45),
               approximate_last_sign_in_date_time=days_ago(150)),
        device(display_name="DUP-1", physical_ids=["[HWID]:h:dup"], approximate_last_sign_in_date_time=days_ago(30)),
        device(display_name="DUP-1", physical_ids=["[HWID]:h:dup"], registration_date_time=days_ago(20)),
        device(display_name="OLD-1", approximate_last_sign_in_date_time=days_ago(120)),
        device(display_name="IPHONE-1", operating_system="iOS", trust_type="Workplace",
               approximate_last_sign_in_date_time=days_ago(120)),
        hybrid(display_name="HYB-1", approximate_last_sign_in_date_time=days_ago(120)),
        device(display_name="BLANK-1", approximate_last_sign_in_date_time=None, registration_date_time=days_ago(200)),
        device(display_name="NOMDM-1", is_managed=False),
        device(display_name="REA-1", extension_attributes=tagged(45)),  # re-enabled after our disable
        hybrid(display_name="UNC-1", alternative_security_ids=[AlternativeSecurityId(type=2, key="!!")]),
        device(display_name="PRN-1", profile_type="Printer", approximate_last_sign_in_date_time=days_ago(300)),
        device(display_name="DUP-1", approximate_last_sign_in_date_time=days_ago(99)),  # a name alone: stale, no duplicate
    ]


async def scan(devices, policy=None, *, now=NOW, queue=None, audit=None, graph=None, **kw):
    graph = graph or FakeGraph(devices)
    queue = queue or FakeQueue()
    audit = audit or FakeAudit()
    summary = await run_scan(graph, queue, audit, policy or Policy(), now=now, **kw)
    return summary, graph, queue, audit


LOOSE = "limits:\n  max_destructive_per_run: 100000\n  max_destructive_fraction: 0.5\n"


async def test_one_command_per_candidate_with_the_documented_fields():
    fleet = one_of_each()
    policy = parse_policy(LOOSE)
    summary, graph, queue, audit = await scan(fleet, policy, partitions=3)
    assert sorted(graph.calls, key=str) == sorted(((p.filter, DEVICE_SELECT) for p in partitions_for(16)), key=str)
    assert summary.devices_scanned == len(fleet) and summary.pages == 3
    assert summary.findings == {
        "protected": 2, "kept": 0, "pending": 2, "registration_unclear": 1, "reactivated": 1, "expired_disabled": 1,
        "duplicate": 1, "stale": 4, "no_signin_record": 1, "unmanaged": 1, "healthy": 2,
    }
    assert list(summary.findings) == list(CLASS_NAMES)
    commands = {(decode(m.body).display_name, decode(m.body).device_class): decode(m.body) for m in queue.messages.values()}
    assert {key: c.proposed_action for key, c in commands.items()} == {
        ("PEND-1", "pending"): "notify_onprem",
        ("PEND-2", "pending"): "report",
        ("EXP-1", "expired_disabled"): "delete",
        ("DUP-1", "duplicate"): "disable",
        ("DUP-1", "stale"): "disable",
        ("REA-1", "reactivated"): "clear_tag",
        ("UNC-1", "registration_unclear"): "report",
        ("OLD-1", "stale"): "disable",
        ("IPHONE-1", "stale"): "tag",
        ("HYB-1", "stale"): "notify_onprem",
        ("BLANK-1", "no_signin_record"): "report",
        ("NOMDM-1", "unmanaged"): "report",
    }
    assert summary.commands_enqueued == 12 and not summary.halted and summary.halt_reason is None
    dup = commands[("DUP-1", "duplicate")]
    older = fleet[5]
    assert dup.device_object_id == older.id and dup.device_id == older.device_id and dup.snapshot == older
    assert dup.evidence["newer_object_id"] == fleet[6].id
    assert dup.run_id == summary.run_id and dup.trigger == "nightly" and dup.created_at == NOW
    assert dup.policy_hash == policy_hash(policy) and dup.schema == "entra-janitor/command" and dup.version == 1
    message = queue.messages[dup.command_id]
    assert message.properties["device_class"] == "duplicate" and message.subject == "duplicate:disable"
    (run,) = audit.of("run")
    assert run.run_id == summary.run_id
    assert run.data["findings"] == summary.findings and run.data["commands_enqueued"] == 12
    assert run.data["halted"] is False and run.data["policy_hash"] == policy_hash(policy)
    assert any("not enrolled in MDM" in note for note in run.data["notes"])
    assert audit.of("decision") == []  # nothing blocked: the worker records the terminal decisions


async def test_second_scan_the_same_day_queues_nothing_new_and_the_next_day_does():
    fleet = one_of_each()
    queue = FakeQueue()
    policy = parse_policy(LOOSE)
    first, *_ = await scan(fleet, policy, queue=queue)
    ids = set(queue.messages)
    assert len(ids) == first.commands_enqueued == 12
    second, *_ = await scan(fleet, policy, queue=queue, now=NOW + timedelta(hours=20))
    assert second.run_id != first.run_id
    assert set(queue.messages) == ids  # every id of the second run was already there
    await scan(fleet, policy, queue=queue, now=NOW + timedelta(days=1))
    assert len(queue.messages) == 2 * len(ids)


def random_fleet(rng: random.Random, n: int) -> list[Device]:
    """Many shared names and hardware ids across trust types, timestamps with ties and blanks, every class."""
    out = []
    for _ in range(n):
        name = f"PC-{rng.randrange(n // 3)}"
        hardware = [f"[HWID]:h:{rng.randrange(n // 3)}", "[GID]:g:1"]
        signed = rng.choice([None, days_ago(rng.choice([1, 10, 10, 40, 95, 200, 400])), NOW + timedelta(days=2)])
        kind = rng.random()
        changes = {
            "display_name": name,
            "approximate_last_sign_in_date_time": signed,
            "registration_date_time": rng.choice([None, days_ago(rng.randrange(1, 600))]),
            "account_enabled": rng.random() > 0.1,
            "is_managed": rng.random() > 0.1,
            "operating_system": rng.choice(["Windows", "Windows", "iOS", "Android"]),
            "physical_ids": hardware,
            "on_premises_sync_enabled": rng.random() > 0.2,
        }
        if kind < 0.15:
            out.append(hybrid(**changes, alternative_security_ids=rng.choice([[], [AlternativeSecurityId(key="!!")]])))
        elif kind < 0.3:
            out.append(hybrid(**changes))
        elif kind < 0.35:
            out.append(device(**{**changes, "physical_ids": ["[ZTDID]:x", *hardware]}))
        elif kind < 0.45:
            changes["account_enabled"] = False
            out.append(device(**changes, extension_attributes=tagged(rng.choice([5, 31, 90]))))
        else:
            out.append(device(**changes, trust_type=rng.choice(["AzureAd", "AzureAd", "Workplace"])))
    return out


@pytest.fixture
def streamed():
    async def run(fleet, policy, **kw):
        graph = FakeGraph(fleet, page_size=37)
        return await scan(fleet, policy, graph=graph, **kw)

    return run


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_scan_matches_in_memory_classification(seed, streamed):
    fleet = random_fleet(random.Random(seed), 600)
    policy = parse_policy(LOOSE)
    summary, _, queue, _ = await streamed(fleet, policy, partitions=5)
    ctx = ClassifyContext(policy, NOW, siblings=siblings_of(fleet))
    expected_counts = dict.fromkeys(CLASS_NAMES, 0)
    expected = {}
    for d in fleet:
        finding = classify(d, ctx)
        expected_counts[finding.device_class] += 1
        action = propose_action(finding, d, policy)
        if action is not None:
            expected[d.id] = (finding.device_class.value, action, dict(finding.evidence))
    assert expected_counts["duplicate"] > 5 and expected_counts["stale"] > 5 and expected_counts["pending"] > 5
    assert expected_counts["reactivated"] > 5 and expected_counts["registration_unclear"] > 5
    assert summary.devices_scanned == len(fleet)
    assert summary.findings == expected_counts
    commands = [decode(m.body) for m in queue.messages.values()]
    got = {c.device_object_id: (c.device_class, c.proposed_action, c.evidence) for c in commands}
    assert got == expected
    assert not summary.halted


async def test_protected_groups_are_read_once_and_protect_their_members():
    old = device(display_name="OLD-2", approximate_last_sign_in_date_time=days_ago(200))
    graph = FakeGraph([old, device()], groups={GROUP: {old.id}})
    policy = parse_policy(f"protect:\n  groups: ['{GROUP}']\n")
    summary, _, queue, _ = await scan([], policy, graph=graph)
    assert summary.findings["protected"] == 1 and summary.findings["stale"] == 0
    assert queue.messages == {}


async def test_a_protected_group_that_cannot_be_read_stops_the_scan():
    graph = FakeGraph([device(approximate_last_sign_in_date_time=days_ago(200))])
    policy = parse_policy(f"protect:\n  groups: ['{GROUP}']\n")
    audit, queue = FakeAudit(), FakeQueue()
    with pytest.raises(GraphError, match="not found"):
        await scan([], policy, graph=graph, audit=audit, queue=queue)
    assert queue.messages == {}
    (run,) = audit.of("run")
    assert run.data["halted"] is True and run.data["halt_reason"].startswith("scan failed: GraphError")


async def test_graph_failure_mid_stream_queues_nothing_and_is_recorded():
    fleet = [device(display_name=f"OLD-{i}", approximate_last_sign_in_date_time=days_ago(200)) for i in range(30)]
    graph = FakeGraph(fleet, page_size=10)
    graph.fail_after_pages = 2
    audit, queue = FakeAudit(), FakeQueue()
    with pytest.raises(GraphError, match="simulated outage"):
        await scan([], graph=graph, audit=audit, queue=queue)
    assert queue.messages == {}
    assert audit.of("run")[0].data["devices_scanned"] == 20


# --------------------------------------------------------------------------- breaker


def stale_heavy_fleet() -> list[Device]:
    fleet = [device(display_name=f"OLD-{i}", approximate_last_sign_in_date_time=days_ago(200)) for i in range(30)]
    fleet += [device(display_name=f"OK-{i}") for i in range(60)]
    fleet += [device(display_name=f"BLANK-{i}", approximate_last_sign_in_date_time=None, registration_date_time=days_ago(300))
              for i in range(5)]
    fleet += [device(display_name=f"EXP-{i}", account_enabled=False, extension_attributes=tagged(60),
                     approximate_last_sign_in_date_time=days_ago(160)) for i in range(5)]
    return fleet


ENFORCE = "mode: enforce\n"


async def test_breaker_halts_queues_nothing_destructive_and_blocks_each_candidate(monkeypatch):
    monkeypatch.setenv("MAIL_SENDER", "janitor@contoso.com")
    policy = parse_policy(ENFORCE + "notify:\n  admins: [endpoint-team@contoso.com]\n")
    fleet = stale_heavy_fleet()
    summary, graph, queue, audit = await scan(fleet, policy)
    # 35 device writes of 100 scanned: over 0.05 x 100 = 5
    assert summary.halted and summary.destructive_proposed == 35 and summary.would_halt is None
    assert "35 device writes proposed" in summary.halt_reason and "max_destructive_fraction 0.05" in summary.halt_reason
    actions = [decode(m.body).proposed_action for m in queue.messages.values()]
    assert actions == ["report"] * 5  # the report-only findings are still queued
    blocked = audit.of("decision")
    assert len(blocked) == 35 == summary.blocked
    assert {b.decision for b in blocked} == {"blocked"}
    assert {b.device_object_id for b in blocked} == {d.id for d in fleet if d.display_name.startswith(("OLD-", "EXP-"))}
    assert all(b.data["gates"] == [{"name": "breaker", "passed": False, "reason": summary.halt_reason}] for b in blocked)
    assert {b.action for b in blocked} == {"disable", "delete"}
    assert all(b.data["evidence"] and b.data["device_class"] in ("stale", "expired_disabled") for b in blocked)
    (run,) = audit.of("run")
    assert run.data["halted"] is True and run.data["breaker"]["allowed"] == 5 and run.reason == summary.halt_reason
    ((sender, to, subject, body),) = graph.mails
    assert sender == "janitor@contoso.com" and to == ["endpoint-team@contoso.com"]
    assert "halted" in subject and "35" in subject and "No device write was queued" in body
    assert run.data["admin_notification"] == {"sent": True, "to": to, "status": 202, "request_id": "mail-req-1"}


async def test_report_mode_is_a_preview_that_says_enforce_would_halt(monkeypatch):
    """Used to halt report runs too: 1,802 proposals on a neglected tenant were `blocked` without meeting a gate."""
    monkeypatch.setenv("MAIL_SENDER", "janitor@contoso.com")
    policy = parse_policy("notify:\n  admins: [endpoint-team@contoso.com]\n")
    fleet = stale_heavy_fleet()
    summary, graph, queue, audit = await scan(fleet, policy)
    assert not summary.halted and summary.halt_reason is None and summary.blocked == 0
    assert summary.would_halt == (
        "enforce mode would halt this run: 35 device writes proposed, 30 over the 5 allowed; raise "
        "limits.max_destructive_fraction to at least 0.35 (or work the backlog down first)"
    )
    assert audit.of("decision") == []  # nothing blocked: every proposal goes to the worker's gates (dry_run there)
    actions = sorted(decode(m.body).proposed_action for m in queue.messages.values())
    assert actions.count("disable") == 30 and actions.count("delete") == 5 and actions.count("report") == 5
    (run,) = audit.of("run")
    assert run.data["would_halt"] == summary.would_halt and summary.would_halt in run.data["notes"]
    assert run.data["breaker"]["halted"] is True  # the verdict itself is kept for the record
    ((_, _, subject, body),) = graph.mails
    assert "enforce mode would halt" in subject and "raise limits.max_destructive_fraction to at least 0.35" in body


async def test_breaker_without_mail_sender_records_why_no_mail_went_out():
    policy = parse_policy(ENFORCE + "notify:\n  admins: [endpoint-team@contoso.com]\n")
    summary, graph, _, _ = await scan(stale_heavy_fleet(), policy)
    assert summary.halted and graph.mails == []
    assert summary.admin_notification["sent"] is False and "MAIL_SENDER" in summary.admin_notification["reason"]


async def test_breaker_absolute_limit_and_a_run_under_both_limits():
    fleet = stale_heavy_fleet()
    tight = parse_policy(ENFORCE + "limits:\n  max_destructive_per_run: 34\n  max_destructive_fraction: 0.5\n")
    summary, *_ = await scan(fleet, tight)
    assert summary.halted and "max_destructive_per_run 34" in summary.halt_reason and "fraction" not in summary.halt_reason
    loose = parse_policy(ENFORCE + "limits:\n  max_destructive_per_run: 35\n  max_destructive_fraction: 0.35\n")
    summary, _, queue, audit = await scan(fleet, loose)
    assert not summary.halted and summary.commands_enqueued == 40 and audit.of("decision") == []
    assert sorted(decode(m.body).proposed_action for m in queue.messages.values()).count("disable") == 30


async def test_audit_store_down_while_blocking_fails_the_scan_without_queuing_destructive():
    audit = FakeAudit()
    audit.down = True
    queue = FakeQueue()
    with pytest.raises(AuditUnavailable):
        await scan(stale_heavy_fleet(), parse_policy(ENFORCE), audit=audit, queue=queue)
    assert all(decode(m.body).proposed_action == "report" for m in queue.messages.values())


async def test_progress_reports_pages_and_ends_done():
    events = []
    fleet = [device() for _ in range(20)]
    await scan(fleet, graph=FakeGraph(fleet, page_size=6), progress=events.append)
    listing = [e for e in events if e.phase == "listing"]
    assert [e.pages for e in listing] == [1, 2, 3, 4] and listing[-1].devices == 20
    assert events[-1].phase == "done"


async def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        await scan([], now=NOW.replace(tzinfo=None))
