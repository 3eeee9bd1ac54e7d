"""Issue 11 (safety semantics) as pure gate tests: each one is a case the worker used to get wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.actions import ACTIONS, DEVICE_WRITES, TICKET_ACTIONS
from shared.tags import Tag
from shared.worker.actions import class_cap, planned_action
from shared.worker.gates import QUOTE_LIMIT, Reservation, budget_gate, evaluate, needs_budget, quote_value
from tests.worker.conftest import enforce
from tests.worker.fakes import NOW, command, device, tagged
from tests.worker.fakes import gate_context as ctx

OURS = Tag("disabled", NOW - timedelta(days=40), "stale", "run-0").render()


def _stop(evaluation):
    return (evaluation.stop.name, evaluation.stop.stop) if evaluation.stop else None


def _result(evaluation, name):
    return next(r for r in evaluation.results if r.name == name)


# --------------------------------------------------------------------------- tag ownership (item 2)
@pytest.mark.parametrize("action", ["disable", "tag", "delete"])
def test_a_foreign_value_in_the_tag_attribute_blocks_every_device_write(action):
    dev = device("f1", extensionAttributes={"extensionAttribute15": "CA-Kiosk-Ring1"})
    evaluation = evaluate(ctx(dev, action, bitlocker_key_ids=(), laps_credential=False))
    assert _stop(evaluation) == ("tag_ownership", "blocked"), "used to overwrite a value CA filters may read"
    assert 'extensionAttribute15 holds "CA-Kiosk-Ring1"' in evaluation.stop.reason
    assert [r.name for r in evaluation.results] == ["kill_switch", "state_unchanged", "tag_ownership"]


def test_tag_ownership_passes_an_empty_attribute_our_tag_and_mail():
    empty = evaluate(ctx(device("f2")))
    assert _result(empty, "tag_ownership").passed and "is empty" in _result(empty, "tag_ownership").reason
    ours = tagged("f3", 40, accountEnabled=True)  # our tag, enabled again: a disable may renew it
    assert _result(evaluate(ctx(ours, "disable")), "tag_ownership").passed
    foreign = device("f4", trustType="ServerAd", onPremisesSyncEnabled=True,
                     extensionAttributes={"extensionAttribute15": "Finance"})
    mail = evaluate(ctx(foreign, "notify_onprem", cmd=command(foreign, device_class="pending", action="notify_onprem")))
    assert mail.stop is None and mail.action == "notify_onprem", "a mail is not a device write"


def test_a_malformed_value_with_our_prefix_is_foreign():
    dev = device("f5", extensionAttributes={"extensionAttribute15": "entra-janitor|disabled|not-a-date|stale|r"})
    assert _stop(evaluate(ctx(dev))) == ("tag_ownership", "blocked")


def test_tag_ownership_reads_the_attribute_the_policy_names():
    dev = device("f6", extensionAttributes={"extensionAttribute15": "someone else's", "extensionAttribute3": "Kiosk"})
    evaluation = evaluate(ctx(dev, policy=enforce(tag={"attribute": 3})))
    assert _stop(evaluation) == ("tag_ownership", "blocked") and "extensionAttribute3" in evaluation.stop.reason
    assert evaluate(ctx(dev, policy=enforce(tag={"attribute": 7}))).stop is None


def test_quoted_values_are_cut_and_invisible_characters_escaped():
    hostile = "\u202egnp.exe\n" + "x" * 2000
    shown = quote_value(hostile)
    assert shown.startswith('"\\u202egnp.exe\\u000a') and shown.endswith(f"... ({len(hostile)} characters)")
    assert "\u202e" not in shown and "\n" not in shown
    assert len(shown) < QUOTE_LIMIT * 6 + 40
    assert quote_value("Kiosk") == '"Kiosk"'


# --------------------------------------------------------------------------- clear_tag (item 3)
def test_clear_tag_ranks_between_notify_and_tag_and_is_a_device_write():
    assert ACTIONS["notify"].rank < ACTIONS["clear_tag"].rank < ACTIONS["tag"].rank and "clear_tag" in DEVICE_WRITES
    assert "clear_tag" not in TICKET_ACTIONS
    dev = tagged("c0", 40, approximateLastSignInDateTime=(NOW - timedelta(days=3)).isoformat())
    reactivated = command(dev, device_class="reactivated", action="clear_tag")
    assert class_cap(reactivated, enforce()) == "clear_tag"
    assert planned_action(reactivated, enforce())[0] == "clear_tag"
    assert planned_action(command(dev, device_class="reactivated", action="delete"), enforce())[0] == "clear_tag"


@pytest.mark.parametrize(
    "fields",
    [
        {"trustType": "ServerAd", "onPremisesSyncEnabled": True, "operatingSystemVersion": "10.0.19045.0"},
        {"operatingSystem": "iOS", "trustType": "Workplace"},
    ],
)
def test_clear_tag_is_not_narrowed_by_the_hybrid_or_platform_gates(fields):
    dev = tagged("c1", 40, action="tagged", **fields)
    evaluation = evaluate(ctx(dev, "clear_tag", cmd=command(dev, device_class="reactivated", action="clear_tag")))
    assert evaluation.stop is None and evaluation.action == "clear_tag"
    assert not any(r.narrow_to for r in evaluation.results)


def test_clear_tag_is_skipped_when_our_tag_is_gone_or_never_ours():
    for value in (None, "Finance"):
        dev = device("c2", extensionAttributes={"extensionAttribute15": value})
        evaluation = evaluate(ctx(dev, "clear_tag", cmd=command(dev, device_class="reactivated", action="clear_tag")))
        assert _stop(evaluation) == ("state_unchanged", "skipped") and "no entra-janitor tag" in evaluation.stop.reason


def test_clear_tag_still_stops_at_the_kill_switch_and_protection():
    dev = tagged("c3", 40, physicalIds=["[ZTDID]:abc"])
    cmd = command(dev, device_class="reactivated", action="clear_tag")
    assert _stop(evaluate(ctx(dev, "clear_tag", cmd=cmd, kill=True))) == ("kill_switch", "blocked")
    assert _stop(evaluate(ctx(dev, "clear_tag", cmd=cmd))) == ("protection", "blocked")


# --------------------------------------------------------------------------- grace period (item 3)
def _delete(dev, policy=None, **facts):
    """An expired_disabled delete; no BitLocker keys and no LAPS password unless `facts` say otherwise."""
    facts = {"bitlocker_key_ids": (), "laps_credential": False, **facts}
    cmd = command(dev, device_class="expired_disabled", action="delete")
    return evaluate(ctx(dev, "delete", policy, cmd=cmd, **facts))


def test_a_tag_older_than_the_last_sign_in_does_not_start_the_grace_period():
    # disabled by us 60 days ago, re-enabled by the helpdesk, used 10 days ago, disabled again by someone else
    dev = tagged("g1", 60, approximateLastSignInDateTime=(NOW - timedelta(days=10)).isoformat())
    evaluation = _delete(dev)
    assert _stop(evaluation) == ("grace_period", "blocked"), "used to be deleted the first night it was disabled again"
    assert "signed in after the entra-janitor tag" in evaluation.stop.reason
    assert "never deleted on that tag" in evaluation.stop.reason


def test_a_non_windows_tagged_marker_follows_the_same_rule():
    policy = enforce(stale={"non_windows_action": "delete"})
    used = tagged("g2", 60, action="tagged", operatingSystem="Android",
                  approximateLastSignInDateTime=(NOW - timedelta(days=5)).isoformat())
    assert _stop(_delete(used, policy=policy)) == ("grace_period", "blocked")
    idle = tagged("g3", 60, action="tagged", operatingSystem="Android")  # last sign-in 200 days ago, before the tag
    assert _delete(idle, policy=policy).stop is None


def test_a_device_enabled_again_is_never_deleted_on_its_tag():
    dev = tagged("g4", 60, accountEnabled=True)
    evaluation = _delete(dev)
    assert _stop(evaluation) == ("grace_period", "blocked") and "enabled again" in evaluation.stop.reason


def test_a_tag_after_the_last_sign_in_and_past_the_grace_period_allows_the_delete():
    assert _delete(tagged("g5", 60)).stop is None


# --------------------------------------------------------------------------- hybrid and sync (item 6)
def test_a_hybrid_object_sync_carries_is_narrowed_to_the_onprem_owners():
    dev = device("h1", trustType="ServerAd", onPremisesSyncEnabled=True, operatingSystemVersion="10.0.22631.0")
    evaluation = evaluate(ctx(dev))
    assert evaluation.action == "notify_onprem" and _result(evaluation, "hybrid").narrow_to == "notify_onprem"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"onPremisesSyncEnabled": False, "operatingSystemVersion": "10.0.19045.0"}, "no longer synced"),
        ({"onPremisesSyncEnabled": None, "operatingSystemVersion": "10.0.19045.0"}, "never synced"),
        ({"onPremisesSyncEnabled": True, "operatingSystemVersion": "6.1.7601"}, "down-level Windows"),
    ],
)
def test_a_hybrid_object_sync_cannot_carry_takes_the_cloud_path(fields, words):
    dev = device("h2", trustType="ServerAd", **fields)
    evaluation = evaluate(ctx(dev))
    assert evaluation.stop is None and evaluation.action == "disable", "used to get 'disable it in AD', which never syncs"
    hybrid = _result(evaluation, "hybrid")
    assert hybrid.passed and hybrid.narrow_to is None and words in hybrid.reason


def test_pending_delete_opt_in_is_for_class_pending_only():
    policy = enforce(pending={"action": "delete", "stuck_after_days": 30})
    dev = device("h3", trustType="ServerAd", onPremisesSyncEnabled=True, alternativeSecurityIds=[],
                 operatingSystemVersion="10.0.19045.0")
    stale = evaluate(ctx(dev, "delete", policy, cmd=command(dev, device_class="stale", action="delete")))
    assert stale.action == "notify_onprem"
    pending = evaluate(ctx(dev, "delete", policy, cmd=command(dev, device_class="pending", action="delete"),
                           bitlocker_key_ids=(), laps_credential=False))
    assert pending.action == "delete" and pending.stop is None


# --------------------------------------------------------------------------- LAPS (item 7)
def test_a_windows_laps_password_blocks_the_delete():
    dev = tagged("l1", 60)
    stored = _delete(dev, laps_credential=True)
    assert _stop(stored) == ("laps_password", "blocked") and "LAPS password" in stored.stop.reason
    unknown = _delete(dev, laps_credential=None)
    assert _stop(unknown) == ("laps_password", "blocked") and "not looked up" in unknown.stop.reason
    allowed = _delete(dev, enforce(gates={"allow_delete_with_laps": True}), laps_credential=True)
    assert allowed.stop is None and "allowed by gates.allow_delete_with_laps" in _result(allowed, "laps_password").reason
    assert _delete(dev).stop is None


# --------------------------------------------------------------------------- Intune first (item 8)
@pytest.mark.parametrize(
    ("fields", "action", "final"),
    [
        ({}, "disable", "disable"),
        ({"operatingSystem": "iOS", "trustType": "Workplace"}, "disable", "tag"),
    ],
)
def test_a_recent_intune_check_in_blocks_tag_and_disable(fields, action, final):
    dev = device("i1", **fields)
    evaluation = evaluate(ctx(dev, action, intune_last_sync=NOW - timedelta(days=4)))
    assert _stop(evaluation) == ("intune_active", "blocked"), "used to block only deletes"
    assert evaluation.action == final and "checked in with Intune 4 days ago" in evaluation.stop.reason
    assert evaluate(ctx(dev, action, intune_last_sync=NOW - timedelta(days=45))).stop is None


def test_a_recent_intune_check_in_does_not_keep_our_stale_tag():
    dev = tagged("i2", 40, accountEnabled=True, approximateLastSignInDateTime=(NOW - timedelta(days=2)).isoformat())
    cmd = command(dev, device_class="reactivated", action="clear_tag")
    evaluation = evaluate(ctx(dev, "clear_tag", cmd=cmd, intune_last_sync=NOW - timedelta(days=1)))
    assert evaluation.stop is None and evaluation.action == "clear_tag"


# --------------------------------------------------------------------------- budget (item 12)
def test_every_device_write_needs_budget_and_mail_does_not():
    assert all(needs_budget(a) for a in ("tag", "clear_tag", "disable", "delete"))
    assert not any(needs_budget(a) for a in ("notify", "notify_onprem", "report", "diagnose"))
    refused = Reservation(False, 2, 2, 2, 1000, "run")
    for action in ("tag", "clear_tag"):
        assert budget_gate(action, None).stop == "deferred", f"{action} used to need no budget"
        assert "per-run budget of 2 device writes" in budget_gate(action, refused).reason
    assert budget_gate("notify_onprem", None).passed
