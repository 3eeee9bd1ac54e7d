"""Type guards for decoded JSON (and JSON-like SDK values).

`json.loads`, `yaml.load`, `msgspec.to_builtins` and untyped SDK attributes hand back `Any`;
`isinstance(x, dict)` alone narrows that to `dict[Unknown, Unknown]`, which strict typing rejects. These
guards narrow to the shape the data really has (JSON object keys are always strings), in one place instead
of a cast at every call site.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeIs


def is_object(value: object) -> TypeIs[Mapping[str, Any]]:
    """True for a JSON object (any Mapping); its keys are strings."""
    return isinstance(value, Mapping)


def is_array(value: object) -> TypeIs[list[Any]]:
    """True for a JSON array (a list)."""
    return isinstance(value, list)


def is_dict(value: object) -> TypeIs[dict[Any, Any]]:
    """True for a dict whose keys may be anything (YAML mappings; Python values being made JSON-ready)."""
    return isinstance(value, dict)


def is_collection(value: object) -> TypeIs[list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]]:
    """True for the Python collections that become JSON arrays."""
    return isinstance(value, list | tuple | set | frozenset)
