"""What the scan proposes for each class (issue "Worker": what each class gets in enforce mode).

The worker's gates may narrow a proposal (protection, hybrid, platform, BitLocker, Intune, budget, report
mode), never widen it. Destructive actions are the ones the blast-radius breaker counts.
"""

from __future__ import annotations

from shared import tags
from shared.classify.model import DeviceClass, Finding
from shared.classify.rules import is_hybrid, is_windows
from shared.commands import Action
from shared.models import Device
from shared.policy import Policy

DESTRUCTIVE: frozenset[str] = frozenset({"disable", "delete"})


def is_destructive(action: str | None) -> bool:
    return action in DESTRUCTIVE


def _retire(device: Device, policy: Policy) -> Action:
    """How an unwanted device object goes away, by where it lives and what an app identity may do to it."""
    if is_hybrid(device):
        return "notify_onprem"  # disable/delete in on-prem AD and let sync carry it; never an Entra write
    if not is_windows(device):
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
        case DeviceClass.PENDING if finding.evidence.get("stuck"):
            return "delete" if policy.pending.action == "delete" else "notify_onprem"
        case DeviceClass.PENDING | DeviceClass.NO_SIGNIN_RECORD | DeviceClass.UNMANAGED:
            return "report"
        case _:
            return None
