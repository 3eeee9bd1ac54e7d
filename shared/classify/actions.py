"""What the scan proposes for each class (what each class gets in enforce mode, before the worker's gates).

The worker's gates may narrow a proposal (protection, tag ownership, hybrid, platform, LAPS, BitLocker,
Intune, budget, report mode), never widen it. Every device write (tag, clear_tag, disable, delete) is what
the blast-radius breaker counts: a tag can move a device in or out of a Conditional Access device filter
(Microsoft Learn, "Filter for devices"), so it is as much a change to the tenant as a disable.
"""

from __future__ import annotations

from shared import tags
from shared.actions import is_device_write
from shared.classify.model import DeviceClass, Finding
from shared.classify.registration import sync_carries
from shared.commands import Action
from shared.models import Device
from shared.platforms import is_windows
from shared.policy import Policy

__all__ = ["is_device_write", "propose_action"]


def _retire(device: Device, policy: Policy) -> Action:
    """How an unwanted device object goes away, by where it lives and what an app identity may do to it.

    Microsoft Learn, "Manage stale devices": synced hybrid Windows 10+ devices are disabled in on-prem AD
    and synced; unsynced and down-level hybrid objects are cleaned up in Entra directly (the cloud path).
    App-only identities may only write extensionAttributes on non-Windows devices (Graph answers 400
    Request_BadRequest otherwise; microsoft-graph-docs issues 15707, 16641).
    """
    if sync_carries(device):
        return "notify_onprem"  # disable/delete in on-prem AD and let sync carry it; never an Entra write
    if not is_windows(device.operating_system):
        if policy.stale.non_windows_action == "delete":
            return "delete"
        return "report" if _tagged_by_us(device, policy) else "tag"  # tagged on an earlier night: nothing left to do
    return "disable"


def _tagged_by_us(device: Device, policy: Policy) -> bool:
    attributes = device.extension_attributes
    return attributes is not None and tags.parse(attributes.get(policy.tag.attribute)) is not None


def propose_action(finding: Finding, device: Device, policy: Policy) -> Action | None:
    """The action a command carries for this finding, or None for classes that get no command."""
    match finding.device_class:
        case DeviceClass.STALE | DeviceClass.DUPLICATE:
            return _retire(device, policy)
        case DeviceClass.EXPIRED_DISABLED:
            return "delete"
        case DeviceClass.REACTIVATED:
            return "clear_tag"
        case DeviceClass.PENDING if finding.evidence.get("stuck"):
            # Deleting a pending object is only a fix when sync re-creates it cleanly (Microsoft Learn, "Pending
            # devices"): down-level objects are never pending-deleted, their owners get the guidance instead.
            return "delete" if policy.pending.action == "delete" and sync_carries(device) else "notify_onprem"
        case (
            DeviceClass.PENDING
            | DeviceClass.REGISTRATION_UNCLEAR
            | DeviceClass.NO_SIGNIN_RECORD
            | DeviceClass.UNMANAGED
        ):
            return "report"
        case _:
            return None
