"""Built-in Azure role definition ids the Bicep assigns, each with its official name and where that is written.

A role id is a bare GUID in the Bicep: a wrong one deploys fine and grants the wrong thing (or fails only at
the first data-plane call). So every id assigned must be in this table, and the name the Bicep gives it
(the key of `var roles = {...}`) must be the role's own name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tree_sitter as ts

from tests.infra.azmodels import constants, declarations, object_properties
from tests.infra.bicep import string_value

_LEARN = "https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles"


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    source: str


# id -> (name, source): Microsoft Learn, "Azure built-in roles", one page per category.
BUILTIN_ROLES: dict[str, Role] = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": Role("Storage Blob Data Owner", f"{_LEARN}/storage#storage-blob-data-owner"),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": Role(
        "Storage Queue Data Contributor", f"{_LEARN}/storage#storage-queue-data-contributor"
    ),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": Role(
        "Storage Table Data Contributor", f"{_LEARN}/storage#storage-table-data-contributor"
    ),
    "76199698-9eea-4c19-bc75-cec21354c6b6": Role("Storage Table Data Reader", f"{_LEARN}/storage#storage-table-data-reader"),
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": Role(
        "Azure Service Bus Data Sender", f"{_LEARN}/integration#azure-service-bus-data-sender"
    ),
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": Role(
        "Azure Service Bus Data Receiver", f"{_LEARN}/integration#azure-service-bus-data-receiver"
    ),
    "4633458b-17de-408a-b874-0445c86b69e6": Role("Key Vault Secrets User", f"{_LEARN}/security#key-vault-secrets-user"),
    "3913510d-42f4-4e42-8a64-420c390055eb": Role(
        "Monitoring Metrics Publisher", f"{_LEARN}/monitor#monitoring-metrics-publisher"
    ),
}

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
_RESOURCE_ID_FUNCTIONS = {b"subscriptionResourceId", b"resourceId", b"tenantResourceId", b"managementGroupResourceId"}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Assignment:
    """One role assignment: the role id it resolves to (None when not a literal) and the name the Bicep gives it."""

    path: Path
    line: int
    symbol: str
    role_id: str | None
    label: str | None


def assignments(path: Path) -> list[Assignment]:
    found = []
    for decl in declarations(path):
        if decl.kind != ROLE_ASSIGNMENT or decl.existing or decl.body is None:
            continue
        value = _property(_property(decl.body, "properties"), "roleDefinitionId")
        role_id, label = _role_id(value, constants(decl.body)) if value is not None else (None, None)
        line = (value or decl.body).start_point[0] + 1
        found.append(Assignment(path, line, decl.symbol, role_id, label))
    return found


def _property(node: ts.Node | None, name: str) -> ts.Node | None:
    if node is None or node.type != "object":
        return None
    return next((value for key, _, value in object_properties(node) if key == name), None)


def _role_id(node: ts.Node, names: dict[str, list[ts.Node]]) -> tuple[str | None, str | None]:
    """The GUID a roleDefinitionId expression names, and the var or key it comes from."""
    if node.type == "call_expression" and node.named_children[0].text in _RESOURCE_ID_FUNCTIONS:
        return _role_id(node.named_children[-1].named_children[-1], names)
    if node.type == "string":
        match = _GUID.search(string_value(node) or "")
        return (match.group(0).lower() if match else None), None
    if node.type == "identifier" and node.text.decode() in names:
        role_id, _ = _role_id(names[node.text.decode()][0], names)
        return role_id, node.text.decode()
    if node.type == "member_expression":
        owner, member = node.named_children[0], node.named_children[-1].text.decode()
        if owner.type == "identifier" and owner.text.decode() in names:
            value = _property(names[owner.text.decode()][0], member)
            return (_role_id(value, names)[0] if value is not None else None), member
    return None, None


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def label_matches(label: str, role: Role) -> bool:
    """`storageBlobDataOwner` names "Storage Blob Data Owner"; the "Azure" prefix of a role name may be left out."""
    name = _normal(role.name)
    return _normal(label) in {name, name.removeprefix("azure")}


def problems(path: Path) -> list[str]:
    """Each assignment whose role is not a known built-in id, or whose Bicep name is not that role's name."""
    found = []
    for a in assignments(path):
        where = f"{a.path}:{a.line}: {a.symbol}"
        role = BUILTIN_ROLES.get(a.role_id or "")
        if a.role_id is None:
            found.append(f"{where}: roleDefinitionId is not a literal built-in role id")
        elif role is None:
            found.append(f"{where}: {a.role_id} is not in BUILTIN_ROLES (tests/infra/builtin_roles.py)")
        elif a.label is None or not label_matches(a.label, role):
            found.append(f"{where}: {a.role_id} is {role.name!r} ({role.source}), but the Bicep calls it {a.label!r}")
    return found
