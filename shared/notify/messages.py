"""The text of notifications (pure: no I/O, the time comes in as a parameter).

Every message says three things a reader needs: what happened (or would happen), why (the class and the
evidence), and how to undo it. Hybrid and pending devices get the on-prem guidance instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


_WHAT = {
    "disable": "was disabled in Entra ID and tagged",
    "tag": "was tagged in Entra ID (it cannot be disabled by an app identity)",
    "delete": "was deleted from Entra ID",
    "notify_onprem": "needs action in on-premises Active Directory",
    "notify": "was reviewed",
}

_UNDO = {
    "disable": (
        "Re-enable the device in the Entra admin center (Devices > All devices > Enable), or with "
        'PATCH /devices/<object id> {{"accountEnabled": true}}, and clear extensionAttribute{attr}. '
        "Signing in on it again also keeps it from being deleted."
    ),
    "tag": "Clear extensionAttribute{attr} on the device; signing in on it again keeps it from being acted on.",
    "delete": (
        "Entra joined and registered devices can be restored from Deleted devices for 30 days; otherwise "
        "re-register or re-join the device. Hybrid devices return with the next sync from on-prem AD."
    ),
    "notify_onprem": "Nothing was changed in Entra ID, so there is nothing to undo.",
    "notify": "Nothing was changed in Entra ID, so there is nothing to undo.",
}

PENDING_GUIDANCE = (
    "This hybrid device never completed registration (a pending object). On the device run "
    "`dsregcmd /status`; if AzureAdJoined is NO or the registration is incomplete, run `dsregcmd /leave` "
    "and restart it so it registers again. If the computer is retired, remove it from AD or from the "
    "Entra Connect sync scope; deleting only the Entra object brings it back at the next sync."
)
HYBRID_GUIDANCE = (
    "This device is hybrid joined: it is synced from on-premises AD by Entra Connect. Disable or delete the "
    "computer object in AD (or move it out of the sync scope) and let sync carry the change; entra-janitor "
    "does not write to hybrid devices in Entra ID."
)


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
) -> Notice:
    """One device's message. `reason` is the gate or class explanation recorded in the audit log."""
    label = _device_label(display_name, object_id)
    what = _WHAT.get(action, f"was handled ({action})")
    if dry_run:
        what = "would be handled: " + action.replace("_", " ") + " (report mode: nothing was changed)"
    headline = f"{label} {what}"
    why = f"Class {device_class}: {reason}"
    undo = _UNDO.get(action, "").format(attr=tag_attribute)
    guidance = ""
    if action == "notify_onprem":
        guidance = PENDING_GUIDANCE if device_class == "pending" else HYBRID_GUIDANCE
        undo = _UNDO["notify_onprem"]
    stamp = now.strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"<p><b>{escape(headline)}</b> ({stamp}).</p>"
        f"<p><b>Why:</b> {escape(why)}</p>{_evidence_lines(evidence)}"
        + (f"<p><b>What to do:</b> {escape(guidance)}</p>" if guidance else "")
        + f"<p><b>How to undo:</b> {escape(undo)}</p>"
        "<p>Sent by entra-janitor. Every action and its reasons are in the audit log.</p>"
    )
    subject = f"[entra-janitor] {display_name or object_id}: {action.replace('_', ' ')}"
    return Notice(
        to=list(to), subject=subject, headline=headline, why=why, undo=undo, device=label, action=action, body_html=body
    )


def render_digest(run_id: str, notices: Sequence[Notice], now: datetime) -> list[tuple[str, str, str]]:
    """One (recipient, subject, html) per recipient, listing every device that recipient was told about."""
    by_recipient: dict[str, list[Notice]] = {}
    for notice in notices:
        for address in notice.to:
            by_recipient.setdefault(address, []).append(notice)
    out: list[tuple[str, str, str]] = []
    for address, items in by_recipient.items():
        rows = "".join(
            f"<tr><td>{escape(n.device)}</td><td>{escape(n.action)}</td><td>{escape(n.why)}</td><td>{escape(n.undo)}</td></tr>"
            for n in items
        )
        body = (
            f"<p>entra-janitor run {escape(run_id)} ({now.strftime('%Y-%m-%d %H:%M UTC')}): {len(items)} device(s).</p>"
            "<table border='1' cellpadding='4'><tr><th>Device</th><th>Action</th><th>Why</th><th>How to undo</th></tr>"
            f"{rows}</table>" + (f"<p>{escape(PENDING_GUIDANCE)}</p>" if any("pending" in n.why for n in items) else "")
        )
        out.append((address, f"[entra-janitor] run {run_id}: {len(items)} device(s)", body))
    return out
