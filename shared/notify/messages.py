"""The text of notifications (pure: no I/O, the time comes in as a parameter).

Every message says three things a reader needs: what happened (or would happen), why (the class and the
evidence), and the undo that really exists for that action and trust type (docs/safety.md). Synced hybrid and
pending devices get the on-prem guidance instead; a stale device with an Intune record gets "retire it in Intune
first" (the worker passes the record's last check-in as evidence `intune_last_sync`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

import msgspec

from shared.ports import Owner


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One device's notification: recipients, subject, and the readable parts (kept for digests)."""

    to: list[str]
    subject: str
    headline: str  # one line: what happened to which device
    why: str
    undo: str
    device: str  # display name (object id)
    action: str
    body_html: str
    advice: str = ""  # for administrators, before anything else (e.g. retire it in Intune first)
    keep_link: str = ""  # the owner's keep link (issue 14): shown only to the owner it was made for
    keep_for: str = ""  # that owner's address


_WHAT = {
    "disable": "was disabled in Entra ID and tagged",
    "tag": "was tagged in Entra ID, not disabled (an application may not disable a device that does not run Windows)",
    "delete": "was deleted from Entra ID",
    "clear_tag": "had entra-janitor's tag removed (it is in use again)",
    "notify_onprem": "needs action in on-premises Active Directory",
    "notify": "was reviewed",
}

JOINED, REGISTERED, HYBRID = "AzureAd", "Workplace", "ServerAd"
#: The undo command (docs/undo.md): it re-enables, untags and restores from deleted items what a run did, only while
#: the device is still as entra-janitor left it.
UNDO_COMMAND: str | None = "janitor undo --run-id <run id> --device <device>"
NOTHING_CHANGED = "Nothing was changed in Entra ID, so there is nothing to undo."

# Every sentence below says an undo that exists, for the device's trust type, and nothing else.
# [Stale] Microsoft Learn, "How to manage stale devices": disabling revokes the device's Primary Refresh Token;
# hybrid Windows 10+ devices are handled in on-premises AD and synced, unsynced and down-level ones in Entra.
# [SoftDelete] Microsoft Learn, "Device soft delete" (preview): Entra joined and registered devices stay in deleted
# items for 30 days; hybrid joined devices are deleted for good at once.
# [LAPS] "Windows LAPS with Microsoft Entra ID": the password is stored on the device object and goes with it.


def _admin_undo() -> str:
    via = f" or with `{UNDO_COMMAND}`" if UNDO_COMMAND else ""
    return (
        "To undo, an administrator enables it again in the Entra admin center (Devices > All devices > the device > "
        f"Enable){via}. entra-janitor never deletes a device that is enabled again."
    )


def _disable_undo(trust_type: str | None, attr: int) -> str:
    effect = "Disabling revoked its Primary Refresh Token: it cannot authenticate to Entra ID until it is enabled again."
    if trust_type == JOINED:  # [Stale]: a disabled Entra joined device cannot be signed in to at all
        effect = "A disabled Entra joined device cannot be signed in to at all, so the fix cannot come from the device."
    elif trust_type == HYBRID:  # [Stale]: sync never carries a change to unsynced or down-level hybrid objects
        effect = (
            "This hybrid joined device is not kept in step by Entra Connect (no longer synced, or Windows 7/8.1), so it "
            "was disabled in Entra ID directly; a change in on-premises AD does not undo it."
        )
    return f"{effect} {_admin_undo()} The tag is in extensionAttribute{attr}."


def _tag_undo(attr: int) -> str:
    via = f", or with `{UNDO_COMMAND}`" if UNDO_COMMAND else ""
    return (
        "The device was not disabled and keeps working. To undo, an administrator clears extensionAttribute"
        f'{attr} with Microsoft Graph (PATCH /devices/<object id> {{"extensionAttributes": {{"extensionAttribute{attr}": '
        f"null}}}}){via}."
    )


LOST_ON_DELETE = (
    "Deleted with the object: its BitLocker recovery keys and its Windows LAPS password stored in Entra ID, and for "
    "an Autopilot device the link Autopilot needs to provision it again."
)


def _delete_undo(trust_type: str | None) -> str:
    if trust_type == HYBRID:  # [SoftDelete]: never for hybrid; [Stale]: sync re-creates what AD still holds
        restore = (
            "Hybrid joined devices are deleted for good (device soft delete never covers them). If the computer is "
            "still in on-premises AD and in the Entra Connect sync scope, the next sync creates a new, pending object "
            "that the device registers again; otherwise the device must be joined again."
        )
    elif trust_type in (JOINED, REGISTERED):
        again = "joined" if trust_type == JOINED else "registered"
        via = f" (an administrator restores it with `{UNDO_COMMAND}`)" if UNDO_COMMAND else ""
        restore = (
            f"It can be restored for 30 days only if device soft delete (a preview) is turned on in your tenant{via}; "
            f"otherwise the device must be {again} again, and what was deleted with it stays lost."
        )
    else:
        restore = (
            "Entra joined and registered devices can be restored for 30 days only where device soft delete (a preview) "
            "is turned on; hybrid joined devices never."
        )
    return f"{LOST_ON_DELETE} {restore}"


def undo_text(action: str, trust_type: str | None, tag_attribute: int) -> str:
    """The undo that exists for this action on a device of this trust type (and nothing else)."""
    if action == "disable":
        return _disable_undo(trust_type, tag_attribute)
    if action == "tag":
        return _tag_undo(tag_attribute)
    if action == "delete":
        return _delete_undo(trust_type)
    if action == "clear_tag":
        return "Nothing to undo: only entra-janitor's own tag was removed."
    return NOTHING_CHANGED


PENDING_GUIDANCE = (
    "This hybrid device never completed registration (a pending object). On the device run "
    "`dsregcmd /status`; if AzureAdJoined is NO or the registration is incomplete, run `dsregcmd /leave` "
    "and restart it so it registers again. If the computer is retired, remove it from AD or from the "
    "Entra Connect sync scope; deleting only the Entra object brings it back at the next sync."
)
HYBRID_GUIDANCE = (
    "This device is hybrid joined: it is synced from on-premises AD by Entra Connect. Disable or delete the "
    "computer object in AD (or move it out of the sync scope) and let sync carry the change; to undo that, enable "
    "it again in AD (or move it back into scope). entra-janitor does not write to synced hybrid devices in Entra ID."
)
INTUNE_FIRST = "It still has an Intune record (last check-in {when}): retire it in Intune first."


def intune_advice(device_class: str, evidence: Mapping[str, Any]) -> str:
    """[Stale] "Retire MDM devices in the MDM first": said for a stale device the worker found an Intune record for.

    The worker puts the record's lastSyncDateTime in the evidence as `intune_last_sync` (absent or null: none).
    """
    last = evidence.get("intune_last_sync")
    if device_class != "stale" or not last:
        return ""
    when = last.strftime("%Y-%m-%d") if isinstance(last, datetime) else str(last)[:10]
    return INTUNE_FIRST.format(when=when)


def recipients(owners: Iterable[Owner], admins: Sequence[str], *, include_owners: bool) -> list[str]:
    """Owners' mail (else UPN) when the policy says so, then the admins; no duplicates, order kept."""
    seen: dict[str, None] = {}
    if include_owners:
        for owner in owners:
            address = owner.mail or owner.user_principal_name
            if address:
                seen.setdefault(address.strip().lower(), None)
    for admin in admins:
        if admin.strip():
            seen.setdefault(admin.strip().lower(), None)
    return list(seen)


def _device_label(name: str | None, object_id: str) -> str:
    return f"{name or '(no name)'} ({object_id})"


def _evidence_lines(evidence: Mapping[str, Any]) -> str:
    if not evidence:
        return ""
    items = "".join(f"<li>{escape(str(k))}: {escape(str(v))}</li>" for k, v in evidence.items())
    return f"<ul>{items}</ul>"


@dataclass(frozen=True, slots=True)
class KeepOffer:
    """The keep link of one owner, and until when it works."""

    link: str
    owner: str  # the owner's address: the only recipient shown the link
    expires: datetime


def keep_paragraph(offer: KeepOffer) -> str:
    """[Stale] warns that a stale timestamp can be a user on leave: the owner may keep the device with one click."""
    return (
        f'<p><b>Still need this device?</b> <a href="{escape(offer.link)}">Keep it</a>: entra-janitor will not disable, '
        "tag or delete it for a while, and enables it again if it disabled it. The link is for you only and works until "
        f"{offer.expires:%d %B %Y}; opening it changes nothing until you press Keep on the page.</p>"
    )


def render_notice(
    *,
    to: Sequence[str],
    action: str,
    device_class: str,
    display_name: str | None,
    object_id: str,
    reason: str,
    evidence: Mapping[str, Any],
    tag_attribute: int,
    now: datetime,
    dry_run: bool = False,
    trust_type: str | None = None,
    keep: KeepOffer | None = None,
) -> Notice:
    """One device's message. `reason` is the gate or class explanation recorded in the audit log.

    `trust_type` (else evidence["trust_type"]) picks the undo that exists for the device; unknown, the text
    covers every trust type. `keep`: the owner's keep link (never in a dry run).
    """
    if dry_run:
        keep = None
    label = _device_label(display_name, object_id)
    what = _WHAT.get(action, f"was handled ({action})")
    if dry_run:
        what = "would be handled: " + action.replace("_", " ") + " (report mode: nothing was changed)"
    headline = f"{label} {what}"
    why = f"Class {device_class}: {reason}"
    undo = undo_text(action, trust_type or evidence.get("trust_type"), tag_attribute)
    guidance = ""
    if action == "notify_onprem":
        guidance = PENDING_GUIDANCE if device_class == "pending" else HYBRID_GUIDANCE
    advice = intune_advice(device_class, evidence)
    stamp = now.strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"<p><b>{escape(headline)}</b> ({stamp}).</p>"
        f"<p><b>Why:</b> {escape(why)}</p>{_evidence_lines(evidence)}"
        + (f"<p><b>First:</b> {escape(advice)}</p>" if advice else "")
        + (f"<p><b>What to do:</b> {escape(guidance)}</p>" if guidance else "")
        + f"<p><b>How to undo:</b> {escape(undo)}</p>"
        + (keep_paragraph(keep) if keep else "")
        + "<p>Sent by entra-janitor. Every action and its reasons are in the audit log.</p>"
    )
    subject = f"[entra-janitor] {display_name or object_id}: {action.replace('_', ' ')}"
    return Notice(
        to=list(to), subject=subject, headline=headline, why=why, undo=undo, device=label, action=action, body_html=body,
        advice=advice, keep_link=keep.link if keep else "", keep_for=keep.owner.strip().lower() if keep else "",
    )  # fmt: skip


def render_digest(run_id: str, notices: Sequence[Notice], now: datetime) -> list[tuple[str, str, str]]:
    """One (recipient, subject, html) per recipient, listing every device that recipient was told about."""
    by_recipient: dict[str, list[Notice]] = {}
    for notice in notices:
        for address in notice.to:
            by_recipient.setdefault(address, []).append(notice)
    out: list[tuple[str, str, str]] = []
    for address, items in by_recipient.items():
        rows = "".join(
            f"<tr><td>{escape(n.device)}</td><td>{escape(n.action)}</td><td>{escape(n.why)}</td><td>{escape(n.undo)}"
            + (f' <a href="{escape(n.keep_link)}">Keep it</a>' if n.keep_link and n.keep_for == address else "")
            + "</td></tr>"
            for n in items
        )
        first = "".join(f"<li>{escape(n.device)}: {escape(n.advice)}</li>" for n in items if n.advice)
        body = (
            f"<p>entra-janitor run {escape(run_id)} ({now.strftime('%Y-%m-%d %H:%M UTC')}): {len(items)} device(s).</p>"
            + (f"<p><b>First:</b></p><ul>{first}</ul>" if first else "")
            + "<table border='1' cellpadding='4'><tr><th>Device</th><th>Action</th><th>Why</th><th>How to undo</th></tr>"
            f"{rows}</table>" + (f"<p>{escape(PENDING_GUIDANCE)}</p>" if any("pending" in n.why for n in items) else "")
        )
        out.append((address, f"[entra-janitor] run {run_id}: {len(items)} device(s)", body))
    return out
