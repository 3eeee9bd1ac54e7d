"""Whether what entra-janitor did to a device can still be put back, and how (pure: no I/O, no clock).

One check serves the worker's undo gate (the device re-read at the moment of the write) and the preview of
`janitor undo --dry-run`, so both say the same thing. The rule is Microsoft's order read backwards: a
device entra-janitor disabled is re-enabled only while it is still disabled and still carries the tag of
the run being undone; anyone who changed it since (re-enabled it, cleared or overwrote the tag, a later run
tagged it) decided something about it, and the undo leaves it alone and says why ("where sources are
silent, write less"). A delete is undone from deleted items (device soft delete, preview: Microsoft Learn,
device docs dated 2026-04): Entra joined and registered devices stay there 30 days; hybrid joined objects
are deleted for good at once, so they are reported with the on-premises steps instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import tags
from shared.actions import Action
from shared.graph.deleted import RESTORE_WINDOW_DAYS
from shared.models import Device
from shared.ports import DeletedDevice

HYBRID_TRUST_TYPE = "ServerAd"
#: What brings a hybrid joined device back: its Entra object is a copy of the AD computer object made by sync.
#: Sources: Microsoft Learn, "Pending devices in Microsoft Entra ID" (a computer back in sync scope comes back as
#: a pending object; the device registers again, or `dsregcmd /leave` and a restart makes it) and device soft
#: delete (hybrid objects are never in deleted items).
AD_STEPS = (
    "hybrid joined objects are deleted for good at once (never kept in deleted items), so Entra cannot restore it. "
    "In on-premises AD: restore the computer object (Active Directory Recycle Bin) or re-create it, and keep it "
    "in Entra Connect's sync scope; the next sync cycle creates a new Entra object, pending until the device "
    "registers again (it does so at its next sign-in; if it stays pending, run dsregcmd /leave on it and restart). "
    "BitLocker recovery keys and the Windows LAPS password stored in Entra for the old object are not brought back"
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """`ok` (do it), or the terminal decision (skipped, blocked) and why."""

    ok: bool
    reason: str
    decision: str = "skipped"


def _go(reason: str) -> Verdict:
    return Verdict(True, reason, "")


def _tag(device: Device, attribute: int) -> tags.Tag | None:
    raw = device.extension_attributes.get(attribute) if device.extension_attributes else None
    return tags.parse(raw)


def _changed(reason: str) -> Verdict:
    return Verdict(False, f"changed since: {reason}; left as it is")


def check_reenable(current: Device | None, run_id: str | None, attribute: int) -> Verdict:
    """Undo a disable: only while the device is still disabled and still carries the `disabled` tag of `run_id`
    (any run of ours when None: a ticket or a keep names no run)."""
    if current is None:
        return Verdict(False, "the device no longer exists (deleted since): restore it first, then re-enable it")
    tag = _tag(current, attribute)
    if tag is None:
        return _changed("the entra-janitor tag is no longer on the device (cleared or overwritten)")
    if run_id is not None and tag.run_id != run_id:
        return _changed(f"the tag is from run {tag.run_id}, not {run_id} (undo that run instead)")
    if tag.action != "disabled":
        return _changed(f"the tag says {tag.action!r}, not disabled")
    if current.account_enabled is not False:
        return _changed("the device is enabled again (someone re-enabled it); the nightly scan clears the stale tag")
    return _go(f"still disabled and still carrying the tag of run {tag.run_id} ({tag.render()})")


def check_clear_tag(current: Device | None, run_id: str | None, attribute: int) -> Verdict:
    """Undo a tag (non-Windows devices are tagged, not disabled): only while it is still that run's tag."""
    if current is None:
        return Verdict(False, "the device no longer exists: nothing to untag")
    tag = _tag(current, attribute)
    if tag is None:
        return _changed("the entra-janitor tag is no longer on the device")
    if run_id is not None and tag.run_id != run_id:
        return _changed(f"the tag is from run {tag.run_id}, not {run_id} (undo that run instead)")
    return _go(f"still carrying the tag of run {tag.run_id}")


def restorable_until(deleted: DeletedDevice) -> datetime | None:
    return deleted.deleted_at + timedelta(days=RESTORE_WINDOW_DAYS) if deleted.deleted_at else None


def check_restore(current: Device | None, deleted: DeletedDevice | None, snapshot: Device | None) -> Verdict:
    """Undo a delete: from deleted items, and only the object that was deleted (its deviceId must match)."""
    if current is not None:
        return Verdict(False, "the device exists: restored already, or the delete never went through")
    if snapshot is not None and snapshot.trust_type == HYBRID_TRUST_TYPE:
        return Verdict(False, f"not restorable in Entra: {AD_STEPS}")
    if deleted is None:
        return Verdict(
            False,
            f"not in deleted items: deleted more than {RESTORE_WINDOW_DAYS} days ago or deleted for good (a hybrid "
            "object, or purged); Entra cannot bring it back",
        )
    if snapshot is not None and snapshot.device_id and deleted.device.device_id != snapshot.device_id:
        return Verdict(
            False,
            f"the deleted item's deviceId {deleted.device.device_id} is not the deleted device's {snapshot.device_id}: "
            "not restored",
            "blocked",
        )
    until = restorable_until(deleted)
    when = f"; restorable until {until:%Y-%m-%d}" if until else ""
    return _go(f"in deleted items (device soft delete){when}")


def check(
    action: Action,
    *,
    current: Device | None,
    run_id: str | None,
    attribute: int,
    deleted: DeletedDevice | None = None,
    snapshot: Device | None = None,
) -> Verdict:
    """The check of one undo action (reenable, restore, clear_tag)."""
    if action is Action.REENABLE:
        return check_reenable(current, run_id, attribute)
    if action is Action.CLEAR_TAG:
        return check_clear_tag(current, run_id, attribute)
    if action is Action.RESTORE:
        return check_restore(current, deleted, snapshot)
    raise ValueError(f"{action.value} is not an undo action")
