"""Compact, fast round trip of a Device for the scan's spill file.

A Device encoded as-is carries every field name and fifteen null extensionAttributes (~1 KB); packed as
a positional tuple it is a third of that, and decoding back is typed (msgspec) and lazy: only devices
that end up with a command are ever unpacked. The tuple shape is derived from the Device fields, so a
field added to Device is carried without touching this module.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import msgspec

from shared.models import Device


def _optional_struct(annotation: Any) -> type[msgspec.Struct] | None:
    """X for `X | None` where X is a Struct (packed as a tuple of its own fields)."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    members = [a for a in get_args(annotation) if a is not type(None)]
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], msgspec.Struct):
        return members[0]
    return None


_FIELDS = msgspec.structs.fields(Device)
_NESTED: dict[int, type[msgspec.Struct]] = {
    i: nested for i, f in enumerate(_FIELDS) if (nested := _optional_struct(f.type)) is not None
}


def _packed_type() -> Any:
    parts: list[Any] = []
    for i, f in enumerate(_FIELDS):
        if i in _NESTED:
            inner = tuple[tuple(g.type for g in msgspec.structs.fields(_NESTED[i]))]  # type: ignore[misc]
            parts.append(inner | None)
        else:
            parts.append(f.type)
    return tuple[tuple(parts)]  # type: ignore[misc]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_packed_type()).decode


def pack(device: Device) -> bytes:
    """The device as compact msgpack bytes."""
    values = list(msgspec.structs.astuple(device))
    for i in _NESTED:
        if values[i] is not None:
            values[i] = msgspec.structs.astuple(values[i])
    return _encode(values)


def unpack(data: bytes) -> Device:
    """The Device that `pack` packed."""
    values = list(_decode(data))
    for i, nested in _NESTED.items():
        if values[i] is not None:
            values[i] = nested(*values[i])
    return Device(*values)
