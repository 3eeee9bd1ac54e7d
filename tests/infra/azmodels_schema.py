"""Azure's own resource models as JSON, for the Bicep property check (tests/infra/azmodels.py).

Runs under tools/azmodels/bin/python (the management SDKs live there, never in the app's venv), so it imports
only the standard library and azure.mgmt.*. Reads `[[resourceType, apiVersion], ...]` on stdin and prints:
  resources: "type@api" -> {model, api_version (what the model describes), package}
  models:    model key -> {"fields": {restName: {"type": T, "readonly": bool, "required": bool}}}
  no_model:  declared types listed below as having no model, with the reason
  unknown:   declared types in neither table (the check fails on them)
where T is {"kind": "model", "ref": key} | {"kind": "object", "fields": ...} (flattened `properties.x` names)
| {"kind": "list", "item": T} | {"kind": "dict", "value": T} | {"kind": "enum", "name", "values"}
| {"kind": "bool" | "int" | "float" | "string" | "any"}.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import importlib
import importlib.metadata
import inspect
import json
import re
import sys
import types
import typing
from typing import Any

Type = dict[str, Any]

# Resource type -> (SDK package holding its models, the model of the PUT body). A package with versioned
# subpackages (v2022_04_01) is read at the Bicep's own API version when it ships that one.
RESOURCE_MODELS: dict[str, tuple[str, str]] = {
    "Microsoft.Resources/resourceGroups": ("azure.mgmt.resource.resources", "ResourceGroup"),
    "Microsoft.ManagedIdentity/userAssignedIdentities": ("azure.mgmt.msi", "Identity"),
    "Microsoft.OperationalInsights/workspaces": ("azure.mgmt.loganalytics", "Workspace"),
    "Microsoft.Insights/components": ("azure.mgmt.applicationinsights", "ApplicationInsightsComponent"),
    "Microsoft.Storage/storageAccounts": ("azure.mgmt.storage", "StorageAccountCreateParameters"),
    "Microsoft.Storage/storageAccounts/blobServices": ("azure.mgmt.storage", "BlobServiceProperties"),
    "Microsoft.Storage/storageAccounts/blobServices/containers": ("azure.mgmt.storage", "BlobContainer"),
    "Microsoft.Storage/storageAccounts/tableServices": ("azure.mgmt.storage", "TableServiceProperties"),
    "Microsoft.Storage/storageAccounts/tableServices/tables": ("azure.mgmt.storage", "Table"),
    "Microsoft.ServiceBus/namespaces": ("azure.mgmt.servicebus", "SBNamespace"),
    "Microsoft.ServiceBus/namespaces/queues": ("azure.mgmt.servicebus", "SBQueue"),
    "Microsoft.KeyVault/vaults": ("azure.mgmt.keyvault", "VaultCreateOrUpdateParameters"),
    "Microsoft.KeyVault/vaults/secrets": ("azure.mgmt.keyvault", "SecretCreateOrUpdateParameters"),
    "Microsoft.Authorization/roleAssignments": ("azure.mgmt.authorization", "RoleAssignmentCreateParameters"),
    "Microsoft.Web/serverfarms": ("azure.mgmt.web", "AppServicePlan"),
    "Microsoft.Web/sites": ("azure.mgmt.web", "Site"),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": ("azure.mgmt.web", "CsmPublishingCredentialsPoliciesEntity"),
}

# Resource types the SDKs carry no model for: each one named here with the reason, never skipped silently.
NO_MODEL: dict[str, str] = {}

_MSREST_PRIMITIVES: dict[str, str] = {
    "str": "string",
    "bool": "bool",
    "int": "int",
    "long": "int",
    "float": "float",
    "decimal": "float",
    "duration": "string",
    "iso-8601": "string",
    "rfc-1123": "string",
    "date": "string",
    "time": "string",
    "unix-time": "int",
    "bytearray": "string",
    "base64": "string",
    "object": "any",
}
_PY_PRIMITIVES: dict[Any, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    decimal.Decimal: "float",
    str: "string",
    bytes: "string",
    datetime.datetime: "string",
    datetime.date: "string",
    datetime.time: "string",
    datetime.timedelta: "string",
    Any: "any",
    object: "any",
}


class Registry:
    """Every model reachable from the requested resources, expanded once (the models refer to each other)."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self._pending: list[type] = []

    def ref(self, cls: type) -> Type:
        key = f"{cls.__module__}.{cls.__qualname__}"
        if key not in self.models:
            self.models[key] = {"fields": {}}
            self._pending.append(cls)
        return {"kind": "model", "ref": key}

    def expand(self) -> None:
        while self._pending:
            cls = self._pending.pop()
            fields = _msrest_fields(cls, self) if hasattr(cls, "_attribute_map") else _hybrid_fields(cls, self)
            self.models[f"{cls.__module__}.{cls.__qualname__}"]["fields"] = fields


def _models_namespace(cls: type) -> dict[str, Any]:
    """Globals to resolve the models' annotations ("_models.SiteConfig") in: their module, plus `_models`."""
    module = sys.modules[cls.__module__]
    package = cls.__module__[: cls.__module__.rindex(".models") + len(".models")]
    return {**vars(typing), "datetime": datetime, "decimal": decimal, **vars(module), "_models": importlib.import_module(package)}


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and (hasattr(obj, "_attribute_map") or hasattr(obj, "_is_model"))


def _enum_type(cls: type[enum.Enum]) -> Type:
    return {"kind": "enum", "name": cls.__name__, "values": [str(member.value) for member in cls]}


def _from_annotation(ann: Any, ns: dict[str, Any], reg: Registry) -> Type:
    """A field's type from its Python annotation (where the SDKs name enums: `Union[str, "_models.FtpsState"]`)."""
    if isinstance(ann, str):
        ann = eval(ann, ns)  # the SDK's own annotation text, resolved against its own module
    if isinstance(ann, typing.ForwardRef):
        ann = eval(ann.__forward_arg__, ns)
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        options = [_from_annotation(a, ns, reg) for a in args if a is not type(None)]
        enums = [o for o in options if o["kind"] == "enum"]
        if enums:
            return enums[0]
        return options[0] if len(options) == 1 else {"kind": "any"}
    if origin is typing.Literal:  # a one-value "enum", e.g. Literal["Allow"]
        return {"kind": "enum", "name": f"Literal[{', '.join(repr(a) for a in args)}]", "values": [str(a) for a in args]}
    if origin in (list, typing.List, typing.Sequence) or ann in (list, typing.List):  # noqa: UP006
        return {"kind": "list", "item": _from_annotation(args[0], ns, reg) if args else {"kind": "any"}}
    if origin in (dict, typing.Dict, typing.Mapping) or ann in (dict, typing.Dict):  # noqa: UP006
        return {"kind": "dict", "value": _from_annotation(args[1], ns, reg) if args else {"kind": "any"}}
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return _enum_type(ann)
    if _is_model(ann):
        return reg.ref(ann)
    return {"kind": _PY_PRIMITIVES.get(ann, "any")}


def _from_msrest(spec: str, ns: dict[str, Any], reg: Registry) -> Type:
    """A field's type from an msrest `_attribute_map` type string ('[Foo]', '{str}', 'iso-8601', 'Foo')."""
    if spec.startswith("[") and spec.endswith("]"):
        return {"kind": "list", "item": _from_msrest(spec[1:-1], ns, reg)}
    if spec.startswith("{") and spec.endswith("}"):
        return {"kind": "dict", "value": _from_msrest(spec[1:-1], ns, reg)}
    if spec in _MSREST_PRIMITIVES:
        return {"kind": _MSREST_PRIMITIVES[spec]}
    target = getattr(ns["_models"], spec, None)
    if isinstance(target, type) and issubclass(target, enum.Enum):
        return _enum_type(target)
    return reg.ref(target) if _is_model(target) else {"kind": "any"}


def _shape(t: Type) -> Any:
    """The structure of a type with enums seen as strings: whether an annotation may refine an msrest type."""
    if t["kind"] in ("list", "dict"):
        return (t["kind"], _shape(t.get("item") or t["value"]))
    return "string" if t["kind"] == "enum" else t.get("ref", t["kind"])


def _msrest_fields(cls: type, reg: Registry) -> dict[str, Any]:
    """Fields of an msrest model: `_attribute_map` keys are REST paths, flattened ones nested ('properties.x')."""
    ns = _models_namespace(cls)
    hints = getattr(cls.__init__, "__annotations__", {})
    validation: dict[str, dict[str, Any]] = getattr(cls, "_validation", {})
    fields: dict[str, Any] = {}
    for attr, spec in cls._attribute_map.items():  # type: ignore[attr-defined]
        field_type = _from_msrest(spec["type"], ns, reg)
        if attr in hints:  # enums are named only in __init__'s annotations
            annotated = _from_annotation(hints[attr], ns, reg)
            if _shape(annotated) == _shape(field_type):
                field_type = annotated
        rules = validation.get(attr, {})
        required = bool(rules.get("required")) and not rules.get("readonly")
        path = [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", spec["key"])]
        target = fields
        for part in path[:-1]:  # a flattened name: the enclosing object is required when a name in it is
            parent = target.setdefault(part, {"type": {"kind": "object", "fields": {}}, "readonly": False, "required": False})
            parent["required"] = parent["required"] or required
            target = parent["type"]["fields"]
        target[path[-1]] = {"type": field_type, "readonly": bool(rules.get("readonly")), "required": required}
    return fields


def _hybrid_fields(cls: type, reg: Registry) -> dict[str, Any]:
    """Fields of a TypeSpec model: `rest_field(name=...)` descriptors, typed by their annotations."""
    ns = _models_namespace(cls)
    fields: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        notes = inspect.get_annotations(base)
        for attr, descriptor in base.__dict__.items():
            if attr.startswith("_") or not hasattr(descriptor, "_rest_name_input"):
                continue
            note = notes.get(attr, Any)
            field_type = _from_annotation(note, ns, reg)
            readonly = getattr(descriptor, "_visibility", None) == ["read"]
            required = not readonly and not _optional(note, ns)
            fields[descriptor._rest_name_input or attr] = {"type": field_type, "readonly": readonly, "required": required}
    return fields


def _optional(ann: Any, ns: dict[str, Any]) -> bool:
    """A TypeSpec model marks a required property by a type without None (`location: str`)."""
    if isinstance(ann, str):
        ann = eval(ann, ns)
    return ann is Any or type(None) in typing.get_args(ann)


def _model_class(package: str, name: str, api: str) -> tuple[type, str]:
    """The model at the Bicep's API version when the package ships that version, else the package's default."""
    versioned = f"{package}.v{api.replace('-', '_')}.models"
    try:
        return getattr(importlib.import_module(versioned), name), api
    except (ImportError, AttributeError):
        cls = getattr(importlib.import_module(f"{package}.models"), name)
        return cls, _default_api_version(package, cls)


def _default_api_version(package: str, cls: type) -> str:
    """The API version a model describes: its versioned module, or the client's default api_version."""
    match = re.search(r"\.v(\d{4}_\d{2}_\d{2}(?:_preview)?)\.", cls.__module__)
    if match:
        return match.group(1).replace("_", "-")
    source = importlib.import_module(f"{package}._configuration").__file__ or ""
    with open(source, encoding="utf-8") as handle:
        found = re.search(r'"api_version",\s*"([^"]+)"', handle.read())
    return found.group(1) if found else "unknown"


def schema(declared: list[tuple[str, str]]) -> dict[str, Any]:
    """The JSON document described in the module docstring, for the declared (type, apiVersion) pairs."""
    reg = Registry()
    out: dict[str, Any] = {"resources": {}, "no_model": {}, "unknown": []}
    for kind, api in sorted(set(declared)):
        if kind in NO_MODEL:
            out["no_model"][kind] = NO_MODEL[kind]
        elif kind not in RESOURCE_MODELS:
            out["unknown"].append(kind)
        else:
            package, name = RESOURCE_MODELS[kind]
            cls, model_api = _model_class(package, name, api)
            out["resources"][f"{kind}@{api}"] = {
                "model": reg.ref(cls)["ref"],
                "api_version": model_api,
                "package": " ".join(_distribution(package)),
            }
    reg.expand()
    out["models"] = reg.models
    return out


def _distribution(package: str) -> tuple[str, str]:
    name = "-".join(package.split(".")[:3])
    return name, importlib.metadata.version(name)


def main() -> None:
    declared = [(kind, api) for kind, api in json.load(sys.stdin)]
    json.dump(schema(declared), sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
