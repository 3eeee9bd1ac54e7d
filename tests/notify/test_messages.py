"""Notification text: the undo that really exists per trust type and action, what a delete loses, Intune first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.notify import messages
from shared.notify.messages import Notice, render_digest, render_notice, undo_text

NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
TRUST_TYPES = ("AzureAd", "Workplace", "ServerAd", None)


def notice(action: str, trust_type: str | None, *, device_class: str = "stale", evidence: dict | None = None,
           dry_run: bool = False) -> Notice:  # fmt: skip
    return render_notice(
        to=["owner@contoso.example"], action=action, device_class=device_class, display_name="PC-1", object_id="oid-1",
        reason="last sign-in 200 days ago", evidence=evidence or {}, tag_attribute=15, now=NOW, dry_run=dry_run,
        trust_type=trust_type,
    )  # fmt: skip


@pytest.mark.parametrize("trust_type", TRUST_TYPES)
@pytest.mark.parametrize("action", ["disable", "tag", "delete", "clear_tag", "notify_onprem", "notify"])
def test_no_message_promises_an_undo_that_does_not_exist(action: str, trust_type: str | None) -> None:
    text = notice(action, trust_type).body_html.lower()
    assert "sign in again" not in text and "signing in" not in text  # a disabled joined device cannot be signed in to
    assert "deleted devices" not in text  # no such restore page: soft delete is a preview, never for hybrid
    if action not in ("disable", "tag", "delete") or (action == "delete" and trust_type not in ("AzureAd", "Workplace")):
        assert "janitor undo" not in text  # nothing it could put back: hybrid deletes, mails, clear_tag


@pytest.mark.parametrize("trust_type", ["AzureAd", "Workplace", "ServerAd"])
def test_a_disable_is_undone_by_an_administrator_re_enabling_it(trust_type: str) -> None:
    undo = notice("disable", trust_type).undo
    assert "administrator enables it again in the Entra admin center" in undo and "extensionAttribute15" in undo
    if trust_type == "AzureAd":
        assert "cannot be signed in to at all" in undo
    if trust_type == "ServerAd":  # only unsynced / down-level hybrid objects are ever disabled in Entra
        assert "not kept in step by Entra Connect" in undo and "on-premises AD does not undo it" in undo


def test_the_undo_command_is_named_once_it_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messages, "UNDO_COMMAND", "janitor undo")
    assert "or with `janitor undo`" in undo_text("disable", "AzureAd", 15)
    assert "`janitor undo`" in undo_text("tag", "Workplace", 15)


def test_a_tag_says_the_device_still_works_and_how_to_clear_it() -> None:
    undo = notice("tag", "Workplace").undo
    assert "was not disabled and keeps working" in undo
    assert '{"extensionAttributes": {"extensionAttribute15": null}}' in undo


@pytest.mark.parametrize(
    ("trust_type", "restore"),
    [
        ("AzureAd", "restored for 30 days only if device soft delete (a preview) is turned on"),
        ("Workplace", "restored for 30 days only if device soft delete (a preview) is turned on"),
        ("ServerAd", "deleted for good (device soft delete never covers them)"),
        (None, "hybrid joined devices never"),
    ],
)
def test_a_delete_says_what_is_lost_and_whether_it_can_come_back(trust_type: str | None, restore: str) -> None:
    undo = notice("delete", trust_type).undo
    for lost in ("BitLocker recovery keys", "Windows LAPS password", "Autopilot"):
        assert lost in undo
    assert restore in undo
    if trust_type == "ServerAd":
        assert "next sync creates a new, pending object" in undo
    if trust_type == "AzureAd":
        assert "must be joined again" in undo
    if trust_type == "Workplace":
        assert "must be registered again" in undo


def test_the_trust_type_comes_from_the_evidence_when_not_given() -> None:
    undo = notice("delete", None, evidence={"trust_type": "ServerAd"}).undo
    assert "deleted for good" in undo


def test_synced_hybrid_and_pending_get_the_on_premises_path_and_nothing_to_undo() -> None:
    hybrid = notice("notify_onprem", "ServerAd")
    pending = notice("notify_onprem", "ServerAd", device_class="pending")
    assert hybrid.undo == pending.undo == messages.NOTHING_CHANGED
    assert "enable it again in AD" in hybrid.body_html and "Entra Connect" in hybrid.body_html
    assert "dsregcmd /leave" in pending.body_html


def test_a_stale_device_with_an_intune_record_says_retire_it_in_intune_first() -> None:
    enrolled = notice("disable", "AzureAd", evidence={"intune_last_sync": "2025-01-02T03:04:05Z"})
    synced_at = notice("disable", "AzureAd", evidence={"intune_last_sync": datetime(2025, 1, 2, tzinfo=UTC)})
    expected = "It still has an Intune record (last check-in 2025-01-02): retire it in Intune first."
    assert enrolled.advice == synced_at.advice == expected
    assert "retire it in Intune first" in enrolled.body_html
    assert notice("disable", "AzureAd", evidence={"intune_last_sync": None}).advice == ""
    assert notice("disable", "AzureAd").advice == ""
    assert notice("delete", "AzureAd", device_class="duplicate", evidence={"intune_last_sync": "2025-01-02"}).advice == ""


def test_the_admin_digest_lists_intune_first_devices_before_the_table() -> None:
    enrolled = notice("disable", "AzureAd", evidence={"intune_last_sync": "2025-01-02T03:04:05Z"})
    plain = notice("delete", "Workplace")
    [(to, subject, body)] = render_digest("run-1", [enrolled, plain], NOW)
    assert to == "owner@contoso.example" and "2 device(s)" in subject
    first, table = body.split("<table", 1)
    assert "PC-1 (oid-1): It still has an Intune record (last check-in 2025-01-02): retire it in Intune first." in first
    assert first.count("<li>") == 1
    assert "Windows LAPS password" in table and "administrator enables it again" in table
