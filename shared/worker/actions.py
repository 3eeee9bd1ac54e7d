"""Where the worker starts: the ticket's request, or the scan's proposal capped by the class table.

The class table is the scan's own (`shared.classify.propose_action`), applied to the snapshot the command
carries, and the ranks are the one action table's (`shared.actions`), so the scan's proposal, the breaker's
count and the worker's cap cannot disagree.
"""

from __future__ import annotations

from shared.actions import TICKET_ACTIONS, UNDO_ACTIONS, Action, narrow, parse_action
from shared.classify import DeviceClass, Finding, propose_action
from shared.commands import RemediationCommand
from shared.policy import Policy


def class_cap(command: RemediationCommand, policy: Policy) -> Action:
    """The most the command's class allows for the device the scan saw (report when unknown or no snapshot)."""
    try:
        device_class = DeviceClass(command.device_class)
    except ValueError:
        return Action.REPORT
    if command.snapshot is None:
        return Action.REPORT
    proposed = propose_action(Finding(device_class, command.evidence), command.snapshot, policy)
    return parse_action(proposed) or Action.REPORT


def planned_action(command: RemediationCommand, policy: Policy) -> tuple[Action, str]:
    """(action, why) the worker starts from: the ticket's or the undo's request, or the proposal capped by the class table.

    An undo (`janitor undo`, a keep link) may only put back (reenable, restore, clear_tag); its gates decide
    whether the device is still as entra-janitor left it.
    """
    proposed = parse_action(command.proposed_action)
    if proposed is None:
        return Action.REPORT, f"unknown proposed action {command.proposed_action!r}: report only"
    if command.trigger == "ticket":
        if proposed not in TICKET_ACTIONS:
            return Action.REPORT, f"ticket action {proposed.value!r} is not one of {', '.join(sorted(TICKET_ACTIONS))}"
        who = command.ticket.requested_by if command.ticket else None
        ref = f"{command.ticket.source} {command.ticket.ticket_id}" if command.ticket else "a ticket"
        return proposed, f"requested by {ref}" + (f" ({who})" if who else "")
    if command.trigger in ("undo", "keep"):
        if proposed not in UNDO_ACTIONS:
            return Action.REPORT, f"{command.trigger} action {proposed.value!r} is not one of {', '.join(sorted(UNDO_ACTIONS))}"
        who = command.evidence.get("requested_by") or ("the device's owner" if command.trigger == "keep" else None)
        return proposed, f"{command.trigger} requested" + (f" by {who}" if who else "")
    cap = class_cap(command, policy)
    action = narrow(proposed, cap)
    if action != proposed:
        return action, f"class {command.device_class!r} allows at most {cap.value!r}; proposed {proposed.value!r} narrowed"
    return action, f"class {command.device_class!r}: {action.value}"
