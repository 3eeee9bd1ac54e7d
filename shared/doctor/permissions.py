"""Which Microsoft Graph application permissions a deployment needs, derived from the policy.

Each feature names the Graph calls it makes (keys of `shared.graph.permissions.REQUIRED_PERMISSIONS`, the
one table of endpoint -> permission) and when the policy turns it on. The calls of an action come from the
action table (shared/actions.py) and those of the worker's gates from what each gate declares it needs
(shared/worker/gates.py), so a new gate or action changes the permissions in one place. `janitor doctor`, the grant script
(`infra/grant-graph-permissions.py`) and the docs' permission table all read this; none keeps its own list.
Least privilege: a report-only policy needs no write permission and no Mail.Send. Optional features (the
doctor's look at Conditional Access filters and dynamic groups) are never needed: the grant script adds them
only with --with-optional, and the doctor says what it could not read without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.actions import ACTIONS, Action
from shared.graph.permissions import REQUIRED_PERMISSIONS
from shared.policy import Policy
from shared.worker.gates import GATES


@dataclass(frozen=True, slots=True)
class Feature:
    """Something the app does, the Graph calls it makes, and whether a policy turns it on."""

    name: str
    when: str  # the condition in words, for the docs and the plan
    endpoints: tuple[str, ...]
    enabled: Callable[[Policy, bool], bool]  # (policy, tickets enabled)
    optional: bool = False  # read by `janitor doctor` only, when granted: never a failure when missing

    @property
    def permissions(self) -> tuple[str, ...]:
        return tuple(sorted({p for key in self.endpoints for p in REQUIRED_PERMISSIONS[key].permissions}))


def _deletes_possible(policy: Policy) -> bool:
    """A delete can be planned (and its gates evaluated, even as a dry run) under this policy."""
    return policy.enforce or policy.stale.non_windows_action == "delete" or policy.pending.action == "delete"


def _action(action: Action, when: str, enabled: Callable[[Policy, bool], bool]) -> Feature:
    """A feature whose Graph calls are the action table's row (shared/actions.py)."""
    return Feature(f"device write: {action.value}", when, ACTIONS[action].endpoints, enabled)


def _gates(name: str, when: str, gates: tuple[str, ...], enabled: Callable[[Policy, bool], bool]) -> Feature:
    """A feature whose Graph reads are what the named worker gates declare they need."""
    specs = {gate.name: gate for gate in GATES}
    return Feature(name, when, tuple(sorted({key for g in gates for key in specs[g].needs})), enabled)


_ENFORCE = "mode: enforce"

FEATURES: tuple[Feature, ...] = (
    Feature("nightly scan", "always", ("list_devices",), lambda p, t: True),
    Feature("worker re-reads each device before acting", "always", ("get_device", "get_device_by_device_id"), lambda p, t: True),
    Feature("protected groups", "protect.groups is not empty", ("group_devices",), lambda p, t: bool(p.protect.groups)),
    _action(Action.CLEAR_TAG, _ENFORCE, lambda p, t: p.enforce),
    _action(Action.TAG, _ENFORCE, lambda p, t: p.enforce),
    _action(Action.DISABLE, _ENFORCE, lambda p, t: p.enforce),
    _action(Action.DELETE, "mode: enforce (expired disabled devices, and the delete opt-ins)", lambda p, t: p.enforce),
    # The intent of a delete records the device's owners and groups: what a restore is checked against (issue 14).
    Feature(
        "delete snapshot: owners and group memberships",
        "mode: enforce (recorded before every delete)",
        ("registered_owners", "device_groups"),
        lambda p, t: p.enforce,
    ),
    # Undo (janitor undo, ticket reenable/restore, the owner's keep link) puts back what an enforce run did.
    _action(Action.REENABLE, "mode: enforce (undo, keep link)", lambda p, t: p.enforce),
    _action(
        Action.RESTORE,
        "mode: enforce (undo of a delete; the Cloud Device Administrator role also allows it: Microsoft names no "
        "application permission yet)",
        lambda p, t: p.enforce,
    ),
    # Microsoft's order is retire in the MDM, then disable, then delete ("Manage stale devices"): a recent Intune
    # check-in blocks a tag or disable as well as a delete, and report mode runs the gates as its preview.
    _gates("write gates: Intune record", "always (report mode previews the gates)", ("intune_active",), lambda p, t: True),
    # A delete destroys the BitLocker recovery keys and the Windows LAPS password stored on the object.
    _gates(
        "delete gates: BitLocker keys and Windows LAPS password",
        "a delete can be planned: mode: enforce, stale.non_windows_action: delete or pending.action: delete",
        ("bitlocker_keys", "laps_password"),
        lambda p, t: _deletes_possible(p),
    ),
    Feature(
        "mail device owners",
        "mode: enforce and notify.owners: true",
        ("registered_owners", "send_mail"),
        lambda p, t: p.enforce and p.notify.owners,
    ),
    Feature("mail administrators", "notify.admins is not empty", ("send_mail",), lambda p, t: bool(p.notify.admins)),
    Feature(
        "ticket webhook: diagnosis and join-scope check",
        "the ticket webhook is in use (WEBHOOK_SECRET set)",
        tuple(sorted({*ACTIONS[Action.SCOPE_CHECK].endpoints, "user_registered_devices"})),
        lambda p, t: t,
    ),
    Feature(
        "doctor: Conditional Access filters that read the tag attribute",
        "optional: janitor doctor reads them when granted",
        ("conditional_access_policies",),
        lambda p, t: True,
        optional=True,
    ),
    Feature(
        "doctor: dynamic group rules that read the tag attribute",
        "optional: janitor doctor reads them when granted",
        ("dynamic_groups",),
        lambda p, t: True,
        optional=True,
    ),
)


#: Broader grants Graph accepts in place of a needed read (so the doctor does not fail a working deployment).
_BROADER: dict[str, tuple[str, ...]] = {
    "Device.Read.All": ("Directory.Read.All", "Directory.ReadWrite.All"),
    "User.Read.All": ("Directory.Read.All", "Directory.ReadWrite.All"),
    "GroupMember.Read.All": ("Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"),
}


def satisfies(held: str, needed: str) -> bool:
    """Whether a granted permission covers a needed one: itself, its ReadWrite or fuller-read variant, or a
    directory-wide read. The doctor still warns about the broader grant (least privilege)."""
    return (
        held == needed
        or held == needed.replace(".Read.", ".ReadWrite.")
        or held == needed.replace(".ReadBasic.", ".Read.")
        or held in _BROADER.get(needed, ())
    )


def _permissions(policy: Policy, tickets: bool, *, optional: bool) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for feature in FEATURES:
        if feature.optional is optional and feature.enabled(policy, tickets):
            for permission in feature.permissions:
                found.setdefault(permission, []).append(feature.name)
    return {p: tuple(found[p]) for p in sorted(found)}


def needed_permissions(policy: Policy, *, tickets: bool) -> dict[str, tuple[str, ...]]:
    """Permission -> the enabled features that need it, sorted by permission name (optional ones left out)."""
    return _permissions(policy, tickets, optional=False)


def optional_permissions(policy: Policy, *, tickets: bool) -> dict[str, tuple[str, ...]]:
    """Permissions only `janitor doctor` reads with, when granted (and the policy does not need them anyway)."""
    needed = needed_permissions(policy, tickets=tickets)
    return {p: f for p, f in _permissions(policy, tickets, optional=True).items() if p not in needed}


def permission_table_markdown() -> str:
    """The docs' permission table: each feature, when it is on, and what it needs."""
    lines = ["| feature | turned on when | Graph application permissions |", "| --- | --- | --- |"]
    for feature in FEATURES:
        lines.append(f"| {feature.name} | {feature.when} | {', '.join(feature.permissions)} |")
    return "\n".join(lines)
