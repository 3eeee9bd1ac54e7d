"""The gates as pure units: order, registration, and the narrowing rules (no I/O at all)."""

from __future__ import annotations

from datetime import timedelta

from shared.actions import Action
from shared.policy import Policy
from shared.tags import Tag
from shared.worker.gates import GATES, Reservation, budget_gate, evaluate, facts_needed, finish, mode_gate
from tests.worker.conftest import enforce
from tests.worker.fakes import NOW, command, device
from tests.worker.fakes import gate_context as _ctx


def test_gates_run_in_the_documented_order_and_declare_permissions():
    names = [g.name for g in GATES]
    assert names == ["kill_switch", "state_unchanged", "tag_ownership", "protection", "kept", "undo_state", "restorable",
                     "hybrid", "recreated_by_sync", "platform", "bitlocker_keys", "laps_password", "intune_active",
                     "grace_period"]
    assert all(g.doc for g in GATES)
    assert next(g for g in GATES if g.name == "bitlocker_keys").needs == ("bitlocker_keys",)
    assert next(g for g in GATES if g.name == "laps_password").needs == ("laps_credentials",)
    assert facts_needed(Action.DELETE) >= {"bitlocker_keys", "laps_credentials", "managed_devices"}
    assert not facts_needed(Action.CLEAR_TAG) & {"bitlocker_keys", "laps_credentials", "managed_devices"}


def test_kill_switch_stops_before_anything_else():
    evaluation = evaluate(_ctx(device("a"), kill=True, current=None))
    assert evaluation.stop.name == "kill_switch" and len(evaluation.results) == 1


def test_non_windows_already_tagged_is_not_tagged_again():
    tag = Tag("tagged", NOW - timedelta(days=5), "stale", "run-0").render()
    dev = device("m", operatingSystem="macOS", extensionAttributes={"extensionAttribute15": tag})
    evaluation = evaluate(_ctx(dev, cmd=command(dev, action="disable")))
    assert evaluation.stop.stop == "skipped" and "already tagged" in evaluation.stop.reason


def test_non_windows_delete_when_policy_allows_needs_an_old_tag():
    policy = enforce(stale={"non_windows_action": "delete"})
    fresh = device("n1", operatingSystem="Android")
    first = evaluate(_ctx(fresh, "delete", policy, cmd=command(fresh, action="delete"), bitlocker_key_ids=()))
    assert first.action == "tag" and first.stop is None, "the first step is the tag that starts the grace period"
    old = Tag("tagged", NOW - timedelta(days=45), "stale", "run-0").render()
    tagged = device("n2", operatingSystem="Android", extensionAttributes={"extensionAttribute15": old})
    later = evaluate(_ctx(tagged, "delete", policy, cmd=command(tagged, action="delete"), bitlocker_key_ids=(),
                           laps_credential=False))
    assert later.action == "delete" and later.stop is None


def test_budget_and_mode_gates():
    refused = Reservation(False, 0, 1000, 500, 1000, "day")
    assert budget_gate("disable", refused).stop == "deferred" and "daily budget of 1000" in budget_gate("disable", refused).reason
    assert budget_gate("notify", None).passed
    assert mode_gate("delete", Policy()).stop == "dry_run"
    assert mode_gate("diagnose", Policy()).passed
    dev = device("b")
    passed = evaluate(_ctx(dev))
    done = finish(passed, Reservation(True, 1, 1, 500, 1000), enforce())
    assert done.stop is None and [r.name for r in done.results][-2:] == ["budget", "mode"]
