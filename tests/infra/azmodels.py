"""Every property name in infra/**/*.bicep checked against Azure's own resource models (no Bicep compiler here).

tree-sitter reads each resource declaration (nested child resources and loops too); the management SDKs,
in their own venv (tools/azmodels, built by `make test`), say which REST names each type and nested type
accepts, via tests/infra/azmodels_schema.py. Names are judged everywhere; values only where they are
literals: an enum the model declares, or a literal of the wrong kind (a string where a bool goes).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter as ts

from tests.infra.bicep import ROOT, parser, string_value

AZMODELS_PYTHON = ROOT / "tools" / "azmodels" / "bin" / "python"
SCHEMA_SCRIPT = Path(__file__).with_name("azmodels_schema.py")
# Keys of the Bicep language itself, not of the resource type: allowed on every resource body.
BICEP_KEYS = frozenset({"name", "parent", "scope", "dependsOn"})
EXISTING_KEYS = frozenset({"name", "parent", "scope"})


@dataclass(frozen=True, slots=True)
class Declaration:
    """One `resource` in a file: `kind` without the API version (Microsoft.Web/sites), `body` its object."""

    path: Path
    line: int
    symbol: str
    kind: str
    api: str
    existing: bool
    body: ts.Node | None


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path
    line: int
    kind: str
    where: str  # dotted path inside the body, e.g. properties.siteConfig.ftpsState
    message: str
    valid: tuple[str, ...] = ()

    def __str__(self) -> str:
        valid = f"; valid here: {', '.join(self.valid)}" if self.valid else ""
        return f"{self.path}:{self.line}: {self.kind} {self.where}: {self.message}{valid}"


def _named(node: ts.Node) -> list[ts.Node]:
    return [c for c in node.named_children if c.type not in ("comment", "decorators", "decorator")]


def _resource_object(node: ts.Node) -> ts.Node | None:
    """The object of a resource value, through `[for ...: ...]` and `if (...)` wrappers."""
    if node.type == "object":
        return node
    if node.type in ("for_statement", "if_statement"):
        return _resource_object(node.child_by_field_name("body") or _named(node)[-1])
    return None


def declarations(path: Path) -> list[Declaration]:
    """Every resource declaration in a file, child resources declared inside a parent's body included."""
    return list(_declarations_under(parser().parse(path.read_bytes()).root_node, path, None))


def _declarations_under(node: ts.Node, path: Path, parent: Declaration | None) -> Iterator[Declaration]:
    for child in _named(node):
        if child.type == "resource_declaration":
            yield from _declaration(child, path, parent)
        elif child.type == "object_property" and parent is not None:
            yield from _declarations_under(child, path, parent)


def _declaration(node: ts.Node, path: Path, parent: Declaration | None) -> Iterator[Declaration]:
    symbol, type_node, value = _named(node)[0], _named(node)[1], _named(node)[-1]
    type_text = string_value(type_node) or ""
    kind, _, api = type_text.partition("@")
    if parent is not None and "/" not in kind:  # `resource queue 'queues' = {...}` inside its namespace
        kind, api = f"{parent.kind}/{kind}", api or parent.api
    existing = any(c.type == "existing" for c in node.children)
    body = _resource_object(value)
    found = Declaration(path, node.start_point[0] + 1, symbol.text.decode(), kind, api, existing, body)
    yield found
    if body is not None:
        yield from _declarations_under(body, path, found)


@cache
def schema(declared: frozenset[tuple[str, str]]) -> dict[str, Any]:
    """Azure's models for these (type, apiVersion) pairs, from the SDKs in tools/azmodels (one subprocess)."""
    if not AZMODELS_PYTHON.exists():
        raise FileNotFoundError(f"{AZMODELS_PYTHON} is missing: run `make test` (it builds tools/azmodels)")
    proc = subprocess.run(
        [str(AZMODELS_PYTHON), str(SCHEMA_SCRIPT)],
        input=json.dumps(sorted(declared)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{SCHEMA_SCRIPT.name} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def schema_for(decls: list[Declaration]) -> dict[str, Any]:
    return schema(frozenset((d.kind, d.api) for d in decls))


@dataclass(slots=True)
class Report:
    """What the check found, and what it judged (so a test can tell a clean result from one that looked at nothing)."""

    findings: list[Finding] = field(default_factory=list)
    checked_types: set[str] = field(default_factory=set)  # resource types whose bodies were walked
    no_model: dict[str, str] = field(default_factory=dict)  # declared types with no SDK model, and why
    enums: list[str] = field(default_factory=list)  # "type path" of every literal judged against an enum
    unjudged: list[str] = field(default_factory=list)  # "type path" of object/array literals the model leaves untyped
    models: dict[str, Any] = field(default_factory=dict)  # "type@api" -> model, the API version it describes, package


def check(decls: list[Declaration]) -> Report:
    """Walk every declaration's body against its model; a type neither table knows is a finding too."""
    models = schema_for(decls)
    report = Report(no_model=dict(models["no_model"]), models=models["resources"])
    for decl in decls:
        if decl.body is None or decl.kind in models["no_model"]:
            continue
        walker = _Walker(decl, models["models"], report)
        if decl.existing:
            walker.existing_body(decl.body)
        elif decl.kind in models["unknown"]:
            message = "no SDK model is mapped for this type: add it to RESOURCE_MODELS (or to NO_MODEL, with the reason)"
            report.findings.append(Finding(decl.path, decl.line, decl.kind, decl.symbol, message))
            continue
        else:
            walker.top_level(decl.body, {"kind": "model", "ref": models["resources"][f"{decl.kind}@{decl.api}"]["model"]})
        report.checked_types.add(decl.kind)
    return report


def check_file(path: Path) -> list[Finding]:
    return check(declarations(path)).findings


class _Walker:
    """Walks one resource body against its model, collecting findings with the line of each bad name."""

    def __init__(self, decl: Declaration, models: dict[str, Any], report: Report) -> None:
        self.decl = decl
        self.models = models
        self.report = report
        self.constants = constants(decl.body) if decl.body is not None else {}
        self._resolving: set[str] = set()

    def _add(self, node: ts.Node, where: str, message: str, valid: tuple[str, ...] = ()) -> None:
        line = node.start_point[0] + 1
        self.report.findings.append(Finding(self.decl.path, line, self.decl.kind, where, message, valid))

    def _fields(self, t: dict[str, Any]) -> dict[str, Any]:
        return self.models[t["ref"]]["fields"] if t["kind"] == "model" else t["fields"]

    def existing_body(self, body: ts.Node) -> None:
        """An `existing` resource only names what it refers to: the type's properties do not belong there."""
        for key, key_node, _ in object_properties(body):
            if key not in EXISTING_KEYS:
                self._add(key_node, key, "an existing resource takes only these keys", tuple(sorted(EXISTING_KEYS)))

    def top_level(self, body: ts.Node, t: dict[str, Any]) -> None:
        self._object(body, self._fields(t), "", BICEP_KEYS)

    def _object(self, node: ts.Node, fields: dict[str, Any], where: str, extra: frozenset[str] = frozenset()) -> None:
        writable = sorted({name for name, f in fields.items() if not f["readonly"]} | extra)
        given = {key for key, _, _ in object_properties(node)}
        for name in sorted(n for n, f in fields.items() if f["required"] and n not in given):
            self._add(node, f"{where}.{name}" if where else name, f"required property '{name}' is missing", tuple(writable))
        for key, key_node, value in object_properties(node):
            path = f"{where}.{key}" if where else key
            if key in extra:
                continue
            if key not in fields:
                hint = [name for name in fields if name.lower() == key.lower()]
                message = f"unknown property '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                self._add(key_node, path, message, tuple(writable))
            elif fields[key]["readonly"]:
                self._add(key_node, path, f"'{key}' is read-only: Azure sets it", tuple(writable))
            else:
                self.value(value, fields[key]["type"], path)

    def value(self, node: ts.Node, t: dict[str, Any], where: str) -> None:
        """A property's value: object literals and loops walked, literals checked, other expressions not judged."""
        kind = t["kind"]
        if node.type == "parenthesized_expression":
            self.value(_named(node)[0], t, where)
        elif node.type == "ternary_expression":
            for branch in ("consequence", "alternative"):
                self.value(node.child_by_field_name(branch) or node, t, where)
        elif node.type == "for_statement" or node.type == "array":
            self._array(node, t, where)
        elif node.type == "object":
            self._object_value(node, t, where)
        elif node.type == "identifier" and node.text.decode() in self.constants:
            self._constant(node.text.decode(), t, where)
        elif kind == "enum":
            self._enum(node, t, where)
        elif node.type in _LITERAL_FITS and kind in _PRIMITIVES and kind not in _LITERAL_FITS[node.type]:
            self._add(node, where, f"expects {_describe(t)}, not the {node.type} {node.text.decode()}")

    def _constant(self, name: str, t: dict[str, Any], where: str) -> None:
        """A param's default and @allowed values, or a var's value, judged where they are written."""
        if name in self._resolving:
            return
        self._resolving.add(name)
        for candidate in self.constants[name]:
            self.value(candidate, t, f"{where} (from {name})")
        self._resolving.discard(name)

    def _array(self, node: ts.Node, t: dict[str, Any], where: str) -> None:
        if t["kind"] == "any":
            self.report.unjudged.append(f"{self.decl.kind} {where}")
            return
        if t["kind"] != "list":
            self._add(node, where, f"expects {_describe(t)}, not an array")
        elif node.type == "for_statement":
            body = node.child_by_field_name("body") or _named(node)[-1]
            self.value(_named(body)[-1] if body.type == "if_statement" else body, t["item"], f"{where}[]")
        else:
            for item in _named(node):
                self.value(item, t["item"], f"{where}[]")

    def _object_value(self, node: ts.Node, t: dict[str, Any], where: str) -> None:
        if t["kind"] in ("model", "object"):
            self._object(node, self._fields(t), where)
        elif t["kind"] == "dict":
            for key, _, value in object_properties(node):
                self.value(value, t["value"], f"{where}.{key}")
        elif t["kind"] == "any":
            self.report.unjudged.append(f"{self.decl.kind} {where}")
        else:
            self._add(node, where, f"expects {_describe(t)}, not an object")

    def _enum(self, node: ts.Node, t: dict[str, Any], where: str) -> None:
        literal = string_value(node)
        if node.type in _LITERAL_FITS:
            self.report.enums.append(f"{self.decl.kind} {where}")
        if node.type in ("number", "boolean") or (literal is not None and literal not in t["values"]):
            shown = node.text.decode()
            self._add(node, where, f"{shown} is not a {t['name']}", tuple(repr(v) for v in t["values"]))


# Which primitive kinds of the models a Bicep literal can stand for (null fits anything: it means "unset").
_LITERAL_FITS = {"string": ("string",), "number": ("int", "float"), "boolean": ("bool",)}
_PRIMITIVES = ("string", "int", "float", "bool")


def constants(node: ts.Node) -> dict[str, list[ts.Node]]:
    """What each param (default and @allowed values) and var (its value) of the node's file may hold."""
    root = node
    while root.parent is not None:
        root = root.parent
    found: dict[str, list[ts.Node]] = {}
    for decl in root.named_children:
        parts = _named(decl)
        if decl.type == "variable_declaration":
            found[parts[0].text.decode()] = [parts[-1]]
        elif decl.type == "parameter_declaration":
            found[parts[0].text.decode()] = parts[2:3] + _allowed(decl)
    return found


def _allowed(param: ts.Node) -> list[ts.Node]:
    """The values of the parameter's `@allowed([...])` decorator (a sibling before it, comments aside)."""
    decorators = param.prev_named_sibling
    while decorators is not None and decorators.type == "comment":
        decorators = decorators.prev_named_sibling
    if decorators is None or decorators.type != "decorators":
        return []
    for call in decorators.named_children:
        expression = _named(call)[0] if _named(call) else call
        if expression.type == "call_expression" and _named(expression)[0].text == b"allowed":
            arguments = _named(_named(expression)[-1])
            return _named(arguments[0]) if arguments and arguments[0].type == "array" else []
    return []


def _describe(t: dict[str, Any]) -> str:
    return {"list": "an array", "dict": "an object", "model": "an object", "object": "an object"}.get(t["kind"], f"a {t['kind']}")


def object_properties(node: ts.Node) -> Iterator[tuple[str, ts.Node, ts.Node]]:
    """(name, name node, value node) of each property of an object literal; nested resources are not properties."""
    for prop in _named(node):
        if prop.type != "object_property":
            continue
        parts = _named(prop)
        if len(parts) < 2:  # a child `resource` declared in the body
            continue
        key_node = parts[0]
        key = string_value(key_node) if key_node.type == "string" else key_node.text.decode()
        yield key or key_node.text.decode(), key_node, parts[-1]
