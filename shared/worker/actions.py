"""The action vocabulary of the worker, and the per-class table of issue 4 (what each class may get).

Actions are ranked from least to most invasive; the worker only ever narrows what the scan (or a ticket)
proposed, never widens it: `narrow(proposed, cap)` keeps the less invasive of the two.
"""

from __future__ import annotations

from shared.commands import RemediationCommand

#: Least to most invasive. notify and notify_onprem only send mail; clear_tag removes our own tag from the
#: tag attribute (a write, but one that only undoes ours); tag writes an extensionAttribute.
RANK: dict[str, int] = {
    "report": 0,
    "diagnose": 0,
    "scope_check": 0,
    "notify": 1,
    "notify_onprem": 1,
    "clear_tag": 2,
    "tag": 3,
    "disable": 4,
    "delete": 5,
}
READ_ONLY = frozenset({"report", "diagnose", "scope_check"})
#: Every write to a device object: each one passes the tag-ownership gate and reserves budget (issue 11).
DEVICE_WRITES = frozenset({"tag", "clear_tag", "disable", "delete"})
DESTRUCTIVE = frozenset({"disable", "delete"})  # what the platform gate narrows for non-Windows devices
MAILS = frozenset({"notify", "notify_onprem"})
#: A ticket cannot ask for clear_tag: the nightly scan decides when our tag no longer holds.
TICKET_ACTIONS = frozenset({"diagnose", "scope_check", "notify", "disable", "delete"})


def is_windows(operating_system: str | None) -> bool:
    return (operating_system or "").strip().lower().startswith("windows")


def narrow(proposed: str, cap: str) -> str:
    """The less invasive of two actions (equal ranks keep the proposal)."""
    return proposed if RANK[proposed] <= RANK[cap] else cap


def class_cap(command: RemediationCommand, policy) -> str:
    """The most the issue-4 table allows for the command's class (before the gates look at the device)."""
    cls = command.device_class
    if cls == "stale":
        if policy.stale.non_windows_action == "delete" and not is_windows(_os(command)):
            return "delete"
        return "disable"
    if cls == "duplicate":
        return "disable"
    if cls == "expired_disabled":
        return "delete"
    if cls == "pending":
        return "delete" if policy.pending.action == "delete" else "notify_onprem"
    if cls == "reactivated":
        return "clear_tag"  # our tag on a device that signed in after it or is enabled again: remove it, nothing more
    return "report"  # registration_unclear, no_signin_record, unmanaged, healthy, protected, anything unknown


def planned_action(command: RemediationCommand, policy) -> tuple[str, str]:
    """(action, why) the worker starts from: the ticket's request, or the proposal capped by the class table."""
    proposed = command.proposed_action
    if proposed not in RANK:
        return "report", f"unknown proposed action {proposed!r}: report only"
    if command.trigger == "ticket":
        if proposed not in TICKET_ACTIONS:
            return "report", f"ticket action {proposed!r} is not one of {', '.join(sorted(TICKET_ACTIONS))}"
        who = command.ticket.requested_by if command.ticket else None
        ref = f"{command.ticket.source} {command.ticket.ticket_id}" if command.ticket else "a ticket"
        return proposed, f"requested by {ref}" + (f" ({who})" if who else "")
    cap = class_cap(command, policy)
    action = narrow(proposed, cap)
    if action != proposed:
        return action, f"class {command.device_class!r} allows at most {cap!r}; proposed {proposed!r} narrowed"
    return action, f"class {command.device_class!r}: {action}"


def _os(command: RemediationCommand) -> str | None:
    if command.snapshot is not None:
        return command.snapshot.operating_system
    return None
