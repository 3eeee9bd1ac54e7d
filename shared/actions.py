"""The one action table: every action entra-janitor can take, ranked, with what it touches and how it is done.

The scan's proposal, the breaker's count, the worker's cap and narrowing, the ticket actions, the planned
Graph calls, the re-read check after a crash and the permission list all read this table, so they cannot
disagree. Actions are ranked from least to most invasive; the worker only ever narrows (keeps the less
invasive of two), never widens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared import tags
from shared.models import Device


class Action(StrEnum):
    REPORT = "report"
    DIAGNOSE = "diagnose"
    SCOPE_CHECK = "scope_check"
    NOTIFY = "notify"
    NOTIFY_ONPREM = "notify_onprem"
    CLEAR_TAG = "clear_tag"
    TAG = "tag"
    DISABLE = "disable"
    DELETE = "delete"
    REENABLE = "reenable"
    RESTORE = "restore"


class Kind(StrEnum):
    READ = "read"  # reads only: runs in every mode, needs no budget
    MAIL = "mail"  # sends mail only: no device write
    WRITE = "write"  # writes to the device object: tag ownership, budget, breaker, intent before, outcome after


@dataclass(frozen=True, slots=True)
class Call:
    """One planned Graph call, as recorded in the intent (and carried out by the worker's shell)."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.body is not None:
            out["body"] = dict(self.body)
        return out


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One row of the table.

    `endpoints` are keys of shared.graph.permissions (the Graph calls the action itself makes; its
    permissions follow from them; the notice a write sends is the mail features' own). `ticket`: a ticket
    may ask for it. `app_only_windows`: an app identity may do it to Windows devices only (Graph answers
    400 Request_BadRequest on other platforms; microsoft-graph-docs issues 15707, 16641). `mails_owners`:
    the owners (and admins) get a notice when it is done.
    """

    action: Action
    rank: int
    kind: Kind
    endpoints: tuple[str, ...] = ()
    ticket: bool = False
    app_only_windows: bool = False
    mails_owners: bool = False
    done: str = ""  # the acted reason, in words

    @property
    def writes(self) -> bool:
        return self.kind is Kind.WRITE


_ROWS: tuple[ActionSpec, ...] = (
    ActionSpec(Action.REPORT, 0, Kind.READ, done="reported"),
    ActionSpec(Action.DIAGNOSE, 0, Kind.READ, ticket=True, done="diagnosed"),
    ActionSpec(
        Action.SCOPE_CHECK, 0, Kind.READ, ("check_member_groups", "device_registration_policy", "get_user"),
        ticket=True, done="join scope checked",
    ),
    ActionSpec(Action.NOTIFY, 1, Kind.MAIL, ("send_mail",), ticket=True, mails_owners=True, done="notified"),
    ActionSpec(Action.NOTIFY_ONPREM, 1, Kind.MAIL, ("send_mail",), mails_owners=True, done="on-prem owners notified"),
    # Removes only our own tag: a write, so it is gated and counted, but it sends no mail (nothing to undo).
    ActionSpec(Action.CLEAR_TAG, 2, Kind.WRITE, ("update_device",), done="tag cleared"),
    ActionSpec(Action.TAG, 3, Kind.WRITE, ("update_device",), mails_owners=True, done="tagged"),
    ActionSpec(
        Action.DISABLE, 4, Kind.WRITE, ("update_device",), ticket=True, app_only_windows=True, mails_owners=True,
        done="disabled and tagged",
    ),
    ActionSpec(Action.DELETE, 5, Kind.WRITE, ("delete_device",), ticket=True, mails_owners=True, done="deleted"),
    # Undo (issue 14): they put back what entra-janitor did, so they rank with clear_tag (less invasive than a tag),
    # but they are device writes all the same: gated, counted by the budget, intent before and outcome after.
    ActionSpec(Action.REENABLE, 2, Kind.WRITE, ("update_device",), ticket=True, done="re-enabled and tag cleared"),
    ActionSpec(
        Action.RESTORE, 2, Kind.WRITE, ("get_deleted_device", "restore_deleted_device"), ticket=True,
        done="restored from deleted items",
    ),
)

#: The table, by action.
ACTIONS: Mapping[Action, ActionSpec] = {row.action: row for row in _ROWS}
#: Every write to a device object (what the breaker and the daily budget count).
DEVICE_WRITES: frozenset[Action] = frozenset(a for a, s in ACTIONS.items() if s.kind is Kind.WRITE)
MAILS: frozenset[Action] = frozenset(a for a, s in ACTIONS.items() if s.kind is Kind.MAIL)
READ_ONLY: frozenset[Action] = frozenset(a for a, s in ACTIONS.items() if s.kind is Kind.READ)
TICKET_ACTIONS: frozenset[Action] = frozenset(a for a, s in ACTIONS.items() if s.ticket)
#: What an undo (janitor undo, a ticket, the owner's keep link) may do: put back a disable, a delete or a tag.
UNDO_ACTIONS: frozenset[Action] = frozenset({Action.REENABLE, Action.RESTORE, Action.CLEAR_TAG})
#: The actions undone by each undo action.
UNDOES: Mapping[Action, Action] = {Action.REENABLE: Action.DISABLE, Action.RESTORE: Action.DELETE, Action.CLEAR_TAG: Action.TAG}


def parse_action(value: str | None) -> Action | None:
    """The Action a string names, or None when it names none."""
    try:
        return Action(value) if value is not None else None
    except ValueError:
        return None


def spec(action: str) -> ActionSpec:
    """The row of an action (KeyError for a name that is not an action)."""
    return ACTIONS[Action(action)]


def is_device_write(action: str | None) -> bool:
    return action in DEVICE_WRITES


def narrow(proposed: Action, cap: Action) -> Action:
    """The less invasive of two actions (equal ranks keep the proposal)."""
    return proposed if ACTIONS[proposed].rank <= ACTIONS[cap].rank else cap


# --------------------------------------------------------------------------- what a write does, and how to see it done


def tag_value(action: Action, at: datetime, device_class: str, run_id: str) -> str:
    """The tag a disable (`disabled`) or a tag (`tagged`) writes."""
    return tags.Tag("disabled" if action is Action.DISABLE else "tagged", at, device_class, run_id).render()


def patch_body(action: Action, attribute: int, at: datetime, device_class: str, run_id: str) -> dict[str, Any]:
    """The PATCH body of a tag, clear_tag, disable (the tag with accountEnabled false) or reenable (accountEnabled
    true and the tag cleared)."""
    name = f"extensionAttribute{attribute}"
    if action is Action.CLEAR_TAG:
        return {"extensionAttributes": {name: None}}
    if action is Action.REENABLE:
        return {"accountEnabled": True, "extensionAttributes": {name: None}}
    body: dict[str, Any] = {"extensionAttributes": {name: tag_value(action, at, device_class, run_id)}}
    return {"accountEnabled": False, **body} if action is Action.DISABLE else body


def plan_calls(action: Action, object_id: str, body: Mapping[str, Any] | None) -> tuple[Call, ...]:
    """The device call an action makes (mail is planned by the notice, not here)."""
    if action is Action.DELETE:
        return (Call("DELETE", f"/devices/{object_id}"),)
    if action is Action.RESTORE:  # Graph beta: device soft delete (preview)
        return (Call("POST", f"/beta/directory/deletedItems/{object_id}/restore"),)
    if action in DEVICE_WRITES:
        return (Call("PATCH", f"/devices/{object_id}", body),)
    return ()


def applied(action: Action, device: Device | None, attribute: int, run_id: str) -> bool:
    """Does a re-read show the action done (a crash between the call and its record)?

    Mail counts as done: a message that may have gone out is never sent again (at most once).
    """
    if action in MAILS:
        return True
    if action is Action.DELETE:
        return device is None
    if action is Action.RESTORE:
        return device is not None
    if device is None:
        return False
    raw = device.extension_attributes.get(attribute) if device.extension_attributes else None
    if action is Action.CLEAR_TAG:
        return tags.parse(raw) is None
    if action is Action.REENABLE:
        return device.account_enabled is True and tags.parse(raw) is None
    tag = tags.parse(raw)
    ours = tag is not None and tag.run_id == run_id
    if action is Action.DISABLE:
        return ours and device.account_enabled is False
    return ours if action is Action.TAG else False
