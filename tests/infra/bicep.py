"""Read Bicep files with tree-sitter-bicep (no bicep binary here): declarations and literal values."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter as ts
import tree_sitter_bicep

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


@cache
def parser() -> ts.Parser:
    return ts.Parser(ts.Language(tree_sitter_bicep.language()))


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(path: Path) -> ts.Tree:
    return parser().parse(path.read_bytes())


def problems(tree: ts.Tree) -> list[str]:
    """ERROR and MISSING nodes, with their positions (empty when the file parses cleanly)."""
    found: list[str] = []

    def walk(node: ts.Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            kind = "MISSING " + node.type if node.is_missing else "ERROR"
            found.append(f"{kind} at line {node.start_point[0] + 1}: {node.text.decode(errors='replace')[:60]!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


def _text(node: ts.Node) -> str:
    return node.text.decode()


def string_value(node: ts.Node) -> str | None:
    """The value of a plain string literal; None when it interpolates or is not a string."""
    if node.type != "string":
        return None
    parts = [c for c in node.named_children]
    if any(c.type != "string_content" and c.type != "escape_sequence" for c in parts):
        return None
    return "".join(_text(c) for c in parts)


def literal(node: ts.Node) -> Any:
    """Python value of a literal (strings, numbers, booleans, objects, arrays); other expressions as source text."""
    if node.type == "string":
        value = string_value(node)
        return value if value is not None else _text(node)
    if node.type == "number":
        return int(_text(node))
    if node.type == "boolean":
        return _text(node) == "true"
    if node.type == "object":
        return object_value(node)
    if node.type == "array":
        return [literal(c) for c in node.named_children if c.type != "comment"]
    return _text(node)


def key_of(prop: ts.Node) -> str:
    key = prop.named_children[0]
    return string_value(key) if key.type == "string" else _text(key)  # type: ignore[return-value]


def object_value(node: ts.Node) -> dict[str, Any]:
    return {key_of(p): literal(p.named_children[1]) for p in node.named_children if p.type == "object_property"}


def object_nodes(node: ts.Node) -> dict[str, ts.Node]:
    """Property name -> value node (not converted), for expressions the test wants to inspect."""
    return {key_of(p): p.named_children[1] for p in node.named_children if p.type == "object_property"}


@dataclass(frozen=True, slots=True)
class Resource:
    symbol: str
    type: str  # e.g. Microsoft.Web/sites@2024-04-01
    body: ts.Node  # the object (the loop body for a resource loop)
    source: str

    @property
    def kind(self) -> str:
        return self.type.split("@", 1)[0]

    def value(self) -> dict[str, Any]:
        return object_value(self.body)


def resources(path: Path) -> Iterator[Resource]:
    for node in parse(path).root_node.named_children:
        if node.type != "resource_declaration":
            continue
        symbol, type_node, body = node.named_children[0], node.named_children[1], node.named_children[-1]
        if body.type in ("for_statement", "if_statement"):  # loops and conditional resources: their object
            body = body.child_by_field_name("body") or body.named_children[-1]
        if body.type == "object":
            yield Resource(_text(symbol), string_value(type_node) or "", body, _text(node))


def declarations(path: Path, kind: str) -> dict[str, ts.Node]:
    """`variable_declaration` / `parameter_declaration` / `output_declaration` / `module_declaration` by name."""
    found: dict[str, ts.Node] = {}
    for node in parse(path).root_node.named_children:
        if node.type == kind:
            found[_text(node.named_children[0])] = node
    return found


def variable(path: Path, name: str) -> ts.Node:
    """The value node of `var name = ...`."""
    return declarations(path, "variable_declaration")[name].named_children[-1]


def parameter_default(path: Path, name: str) -> Any:
    """The default of `param name type = default` (None when it has none)."""
    node = declarations(path, "parameter_declaration")[name]
    children = node.named_children
    return literal(children[-1]) if len(children) >= 3 else None
