"""The rest of the simulated directory: users, groups, the device registration policy.

Small next to the device fleet (a user per ten devices at most), so plain objects and dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

JoinMode = Literal["all", "selected", "none"]

_MEMBERSHIP_TYPE = {
    "all": "#microsoft.graph.allDeviceRegistrationMembership",
    "selected": "#microsoft.graph.enumeratedDeviceRegistrationMembership",
    "none": "#microsoft.graph.noDeviceRegistrationMembership",
}


@dataclass(slots=True)
class User:
    id: str
    display_name: str
    given_name: str
    surname: str
    user_principal_name: str
    mail: str | None
    account_enabled: bool = True
    job_title: str | None = None

    def to_graph(self) -> dict[str, Any]:
        """The user as Graph v1.0 returns it by default (plus accountEnabled, which $select may ask for)."""
        return {
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": self.given_name,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "surname": self.surname,
            "userPrincipalName": self.user_principal_name,
            "id": self.id,
        }


USER_DEFAULT_FIELDS = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_EXTRA_FIELDS = ("accountEnabled",)


@dataclass(slots=True)
class Group:
    """A security group. Members are indexes into the tenant's device store / user list / group list."""

    id: str
    display_name: str
    description: str
    devices: list[int] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    group_types: list[str] = field(default_factory=list)  # ["DynamicMembership"] for a dynamic group
    membership_rule: str | None = None

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "groupTypes": list(self.group_types),
            "mailEnabled": False,
            "securityEnabled": True,
            "mail": None,
            "membershipRule": self.membership_rule,
            "membershipRuleProcessingState": "On" if self.membership_rule else None,
        }


class Groups:
    """Groups by id, with transitive membership (nested groups are followed, cycles are harmless)."""

    def __init__(self) -> None:
        self.items: list[Group] = []
        self._by_id: dict[str, int] = {}

    def add(self, group: Group) -> int:
        self._by_id[group.id.lower()] = len(self.items)
        self.items.append(group)
        return len(self.items) - 1

    def get(self, group_id: str) -> Group | None:
        index = self._by_id.get(group_id.lower())
        return None if index is None else self.items[index]

    def closure(self, group: Group) -> Iterator[Group]:
        """The group and every group nested in it, each once."""
        seen: set[int] = set()
        stack = [group]
        while stack:
            current = stack.pop()
            key = id(current)
            if key in seen:
                continue
            seen.add(key)
            yield current
            stack.extend(self.items[i] for i in current.groups)

    def transitive_devices(self, group: Group) -> list[int]:
        out: dict[int, None] = {}
        for g in self.closure(group):
            out.update(dict.fromkeys(g.devices))
        return list(out)

    def transitive_users(self, group: Group) -> list[int]:
        out: dict[int, None] = {}
        for g in self.closure(group):
            out.update(dict.fromkeys(g.users))
        return list(out)

    def user_is_member(self, group: Group, user_index: int) -> bool:
        return any(user_index in g.users for g in self.closure(group))


@dataclass(slots=True)
class RegistrationPolicy:
    """deviceRegistrationPolicy: who may Entra-join devices, and how many devices a user may hold."""

    join_mode: JoinMode = "selected"
    join_users: list[str] = field(default_factory=list)
    join_groups: list[str] = field(default_factory=list)
    user_device_quota: int = 50

    def to_graph(self, base_url: str) -> dict[str, Any]:
        allowed: dict[str, Any] = {"@odata.type": _MEMBERSHIP_TYPE[self.join_mode]}
        if self.join_mode == "selected":
            allowed["users"] = list(self.join_users)
            allowed["groups"] = list(self.join_groups)
        return {
            "@odata.context": f"{base_url}/$metadata#policies/deviceRegistrationPolicy/$entity",
            "id": "deviceRegistrationPolicy",
            "displayName": "Device Registration Policy",
            "description": "Tenant-wide policy that manages initial provisioning controls using quota restrictions,"
            " additional authentication and authorization checks",
            "userDeviceQuota": self.user_device_quota,
            "multiFactorAuthConfiguration": "notRequired",
            "azureADRegistration": {
                "isAdminConfigurable": False,
                "allowedToRegister": {"@odata.type": _MEMBERSHIP_TYPE["all"]},
            },
            "azureADJoin": {
                "isAdminConfigurable": True,
                "allowedToJoin": allowed,
                "localAdmins": {"enableGlobalAdmins": True, "registeringUsers": {"@odata.type": _MEMBERSHIP_TYPE["all"]}},
            },
            "localAdminPassword": {"isEnabled": False},
        }
