"""The keep link in owner notices (only the owner's, only for a disable or a tag, never in a dry run), the `kept`
class right after `protected`, and the worker's gate that holds a command queued before the owner answered."""

from __future__ import annotations

from datetime import timedelta

from shared.classify import RULES, ClassifyContext, DeviceClass, classify
from shared.commands import encode
from shared.keep.links import KeepLinks
from shared.keep.records import keep_entry
from shared.keep.token import KeepToken, read_token
from shared.notify import render_digest
from shared.policy import Policy, policy_from_data
from shared.ports import Owner
from shared.worker.budget import MemoryBudget
from shared.worker.handler import Worker
from tests.worker.conftest import decisions_of, enforce
from tests.worker.fakes import NOW, FakeGraph, command, device

SECRET = b"keep-link-secret-0123456789abcdefghijklmnop"
LINKS = KeepLinks(SECRET, "https://janitor.example.net")
OWNER = Owner("7c1d2e3f-aaaa-4bbb-8ccc-dddd0000eeee", "Ana", "ana@contoso.test", "ana@contoso.test")
DEVICE_ID = "0b9e7c4e-1111-4222-8333-444455556666"
NO_DIGEST = policy_from_data({"mode": "enforce", "notify": {"digest": False, "admins": ["it@contoso.test"]}})


def stale_pc(**fields) -> object:
    return device(DEVICE_ID, **fields)


async def handle(audit, graph: FakeGraph, cmd, policy: Policy, links: KeepLinks | None = LINKS) -> Worker:
    worker = Worker(graph, audit, MemoryBudget(), policy, mail_sender="janitor@contoso.test", clock=lambda: NOW,
                    keep_links=links)  # fmt: skip
    await worker.handle(encode(cmd), message_id=cmd.command_id)
    return worker


async def test_a_disable_notice_carries_the_owners_link_for_this_device_only(audit) -> None:
    graph = FakeGraph(stale_pc())
    graph.owners[DEVICE_ID] = [OWNER]
    await handle(audit, graph, command(graph.devices[DEVICE_ID]), NO_DIGEST)
    [(_, to, _, body)] = graph.mails
    assert to == ["ana@contoso.test", "it@contoso.test"]
    link = body.split('<a href="', 1)[1].split('"', 1)[0]
    assert link.startswith("https://janitor.example.net/api/keep/")
    granted = read_token(SECRET, link.rsplit("/", 1)[1], NOW)
    assert (granted.device_object_id, granted.owner_id) == (DEVICE_ID, OWNER.id)
    assert granted.expires == NOW + timedelta(days=30)  # keep.link_days
    assert "opening it changes nothing until you press Keep" in body


async def test_no_link_for_a_delete_a_dry_run_or_without_settings(audit) -> None:
    cases = [
        (command(stale_pc(), action="delete", device_class="expired_disabled"), NO_DIGEST, LINKS),
        (command(stale_pc()), policy_from_data({"notify": {"digest": False}}), LINKS),  # report mode: dry run
        (command(stale_pc(), command_id="c-3"), NO_DIGEST, None),  # KEEP_LINK_SECRET or PUBLIC_BASE_URL unset
    ]
    for cmd, policy, links in cases:
        graph = FakeGraph(stale_pc())
        graph.owners[DEVICE_ID] = [OWNER]
        await handle(audit, graph, cmd, policy, links)
        assert all("/api/keep/" not in body for *_, body in graph.mails), cmd.proposed_action
        decision = (await decisions_of(audit, cmd.command_id))[0]
        assert "/api/keep/" not in str(decision.entry.data.get("notice", ""))


async def test_a_digest_shows_the_link_to_its_owner_only(audit) -> None:
    graph = FakeGraph(stale_pc())
    graph.owners[DEVICE_ID] = [OWNER]
    policy = policy_from_data({"mode": "enforce", "notify": {"digest": True, "admins": ["it@contoso.test"]}})
    worker = await handle(audit, graph, command(graph.devices[DEVICE_ID]), policy)
    [notice] = worker._digest["run-1"]  # the held digest, before it is sent
    by_address = {address: body for address, _, body in render_digest("run-1", [notice], NOW)}
    assert "/api/keep/" in by_address["ana@contoso.test"] and "/api/keep/" not in by_address["it@contoso.test"]


def test_kept_is_tried_right_after_protected_and_ends_when_the_keep_ends() -> None:
    assert [spec.device_class for spec in RULES[:3]] == [DeviceClass.PROTECTED, DeviceClass.KEPT, DeviceClass.PENDING]
    stale = stale_pc(approximateLastSignInDateTime=(NOW - timedelta(days=200)).isoformat())
    kept = ClassifyContext(Policy(), NOW, kept={DEVICE_ID: NOW + timedelta(days=10)})
    finding = classify(stale, kept)
    assert finding.device_class is DeviceClass.KEPT and not finding.candidate
    assert finding.evidence["kept_until"] == (NOW + timedelta(days=10)).isoformat().replace("+00:00", "Z")
    over = ClassifyContext(Policy(), NOW, kept={DEVICE_ID: NOW - timedelta(seconds=1)})
    assert classify(stale, over).device_class is DeviceClass.STALE
    autopilot = stale_pc(physicalIds=["[ZTDID]:z-1"])
    assert classify(autopilot, kept).device_class is DeviceClass.PROTECTED  # protected comes first


async def test_a_command_queued_before_the_keep_is_blocked_by_the_worker(audit) -> None:
    dev = stale_pc()
    graph = FakeGraph(dev)
    token = KeepToken(DEVICE_ID, OWNER.id, NOW + timedelta(days=30))
    await audit.append(keep_entry(token, dev, "ana@contoso.test", NOW + timedelta(days=60), None))
    cmd = command(dev)
    await handle(audit, graph, cmd, enforce())
    [decision] = await decisions_of(audit, cmd.command_id)
    assert decision.entry.decision == "blocked" and "kept by its owner until" in decision.entry.reason
    assert graph.writes == []
