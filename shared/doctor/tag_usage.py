"""Does anything in the tenant read the tag attribute? Conditional Access device filters and dynamic groups.

Conditional Access device filters and dynamic device group rules can use device.extensionAttribute1..15
(Microsoft Learn, "Conditional Access: Filter for devices" and "Dynamic membership rules for groups"), so
writing the tag into an attribute a rule reads can move a device in or out of a policy's scope. The doctor
reads both (Policy.Read.All, Group.Read.All: optional grants) and warns for every rule that names the tag
attribute; without the permission it says which one is missing instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shared.doctor.report import CheckResult, ok, warn
from shared.errors import GraphError, GraphPermissionError

CA_CHECK = "tag attribute vs Conditional Access"
GROUPS_CHECK = "tag attribute vs dynamic groups"

# `extensionAttribute15`, `device.extensionAttribute15` (any case, any spacing around the dot). A prefix other
# than `device.` (e.g. `user.extensionAttribute15` in a dynamic user group) reads another object: not ours.
_MENTION = re.compile(r"(?:\b(\w+)\s*\.\s*)?\bextensionAttribute(\d+)(?!\w)", re.IGNORECASE)


def mentions_attribute(rule: str | None, attribute: int) -> bool:
    """Whether a device filter or membership rule reads the device's extensionAttribute<attribute>."""
    for match in _MENTION.finditer(rule or ""):
        prefix = match.group(1)
        if int(match.group(2)) == attribute and (prefix is None or prefix.lower() == "device"):
            return True
    return False


def _rule_list(found: Sequence[tuple[str, str]]) -> str:
    return "; ".join(f"{name}: {rule}" for name, rule in found)


def ca_findings(policies: Sequence[Any], attribute: int) -> list[tuple[str, str]]:
    """(policy name and state, device filter rule) of each Conditional Access policy that reads the attribute."""
    found: list[tuple[str, str]] = []
    for policy in policies:
        device_filter = policy.device_filter
        if device_filter is not None and mentions_attribute(device_filter.rule, attribute):
            name = f"'{policy.display_name or policy.id}' ({policy.state or 'state unknown'}, {device_filter.mode or '?'})"
            found.append((name, device_filter.rule or ""))
    return found


def group_findings(groups: Sequence[Any], attribute: int) -> list[tuple[str, str]]:
    """(group name, membership rule) of each dynamic group whose rule reads the attribute."""
    return [
        (f"'{group.display_name or group.id}'", group.membership_rule or "")
        for group in groups
        if mentions_attribute(group.membership_rule, attribute)
    ]


async def _checked(
    name: str,
    permission: str,
    what: str,
    read: Callable[[], Awaitable[Sequence[Any]]],
    find: Callable[[Sequence[Any], int], list[tuple[str, str]]],
    attribute: int,
) -> CheckResult:
    label = f"extensionAttribute{attribute}"
    try:
        items = await read()
    except GraphPermissionError:
        return warn(
            name,
            f"could not read {what}: the identity lacks {permission}, so it is unknown whether they read {label}",
            f"grant {permission} (optional, read by the doctor only: infra/grant-graph-permissions.py --with-optional), "
            f"or check {what} by hand in the Entra admin center",
        )
    except GraphError as exc:
        return warn(name, f"could not read {what}: {exc}", f"check {what} by hand in the Entra admin center")
    found = find(items, attribute)
    if not found:
        return ok(name, f"none of {len(items)} {what} reads {label}")
    return warn(
        name,
        f"{len(found)} of {len(items)} {what} read {label}, which entra-janitor writes its tag into: {_rule_list(found)}",
        "writing the tag can move a device in or out of their scope: set tag.attribute in the policy to an "
        "extensionAttribute nothing reads, or change the rules",
    )


async def check_tag_usage(graph: Any, attribute: int) -> list[CheckResult]:
    """Warnings for the Conditional Access filters and dynamic group rules that read the tag attribute."""
    return [
        await _checked(
            CA_CHECK, "Policy.Read.All", "Conditional Access policies' device filters",
            graph.conditional_access_policies, ca_findings, attribute,
        ),
        await _checked(
            GROUPS_CHECK, "Group.Read.All", "dynamic groups' membership rules",
            graph.dynamic_groups, group_findings, attribute,
        ),
    ]  # fmt: skip
