"""Compact storage of a device fleet: pre-encoded JSON pieces per device plus a few typed columns.

A device is stored as three JSON pieces that concatenate into its Graph object: a per-device `core`
(ids, name, state, timestamps, physicalIds, alternativeSecurityIds, on-premises ids), a shared `profile`
(trust type, OS, management fields: a few hundred distinct combinations, interned) and an
`extensionAttributes` piece (one shared all-null piece unless the device carries a value). Pages are
built by joining bytes, which is what lets one core serve a million devices quickly. Filters read the
typed columns (state, timestamps, names, profile number) instead of parsing JSON.

Writes replace a device's pieces and columns in place (indexes never move), so paging stays stable while
devices are patched or deleted.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from simulator import timefmt
from simulator.guids import IndexedGuids

CORE_FIELDS: tuple[str, ...] = (
    "id",
    "deviceId",
    "displayName",
    "accountEnabled",
    "approximateLastSignInDateTime",
    "registrationDateTime",
    "physicalIds",
    "alternativeSecurityIds",
    "onPremisesLastSyncDateTime",
    "onPremisesSecurityIdentifier",
)
PROFILE_FIELDS: tuple[str, ...] = (
    "trustType",
    "operatingSystem",
    "operatingSystemVersion",
    "isManaged",
    "isCompliant",
    "onPremisesSyncEnabled",
    "profileType",
    "managementType",
    "deviceOwnership",
    "enrollmentType",
)
EXT_FIELD = "extensionAttributes"
EXT_KEYS: tuple[str, ...] = tuple(f"extensionAttribute{n}" for n in range(1, 16))
#: Every property the simulator stores for a device, in the order it is written.
STORED_FIELDS: tuple[str, ...] = (*CORE_FIELDS, *PROFILE_FIELDS, EXT_FIELD)
#: Other v1.0 device properties a client may $select; the simulator answers them with these values.
OTHER_FIELDS: Mapping[str, Any] = {
    "complianceExpirationDateTime": None,
    "deletedDateTime": None,
    "deviceCategory": None,
    "deviceMetadata": None,
    "deviceVersion": None,
    "enrollmentProfileName": None,
    "isManagementRestricted": None,
    "isRooted": None,
    "manufacturer": None,
    "mdmAppId": None,
    "model": None,
    "systemLabels": [],
}
#: Every property name $select accepts for a device.
KNOWN_FIELDS: tuple[str, ...] = (*STORED_FIELDS, *OTHER_FIELDS)
_KNOWN_LOWER = {name.lower(): name for name in KNOWN_FIELDS}

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_ID_SLICE = slice(7, 43)  # b'{"id":"' + 36 characters
_DEVICE_ID_SLICE = slice(57, 93)  # + b'","deviceId":"' + 36 characters
_NULL_EXT = b',"extensionAttributes":' + _encode(dict.fromkeys(EXT_KEYS))
_QUOTE = ord('"')


def canonical_field(name: str) -> str | None:
    """The property's proper spelling (Graph matches $select names case-insensitively), or None if unknown."""
    return _KNOWN_LOWER.get(name.strip().lower())


@dataclass(frozen=True, slots=True)
class Profile:
    """One interned combination of the shared device properties."""

    fields: Mapping[str, Any]
    piece: bytes  # ',"trustType":...' (leading comma, no braces)


@dataclass(frozen=True, slots=True)
class Selection:
    """How to render devices for a $select: by joining stored pieces (fast) or via a decoded dict."""

    fast: bool
    with_ext: bool = False
    tail: bytes = b"}"
    keys: tuple[str, ...] = ()


DEFAULT_SELECTION = Selection(fast=True)


def plan_selection(select: Iterable[str] | None) -> Selection:
    """Plan a $select (names already canonical). Any superset of the stored core and profile is fast."""
    if select is None:
        return DEFAULT_SELECTION
    wanted = set(select)
    if wanted.issuperset(CORE_FIELDS) and wanted.issuperset(PROFILE_FIELDS):
        extras = [name for name in OTHER_FIELDS if name in wanted]
        tail = b"".join(b',"' + name.encode() + b'":' + _encode(OTHER_FIELDS[name]) for name in extras) + b"}"
        return Selection(fast=True, with_ext=EXT_FIELD in wanted, tail=tail)
    return Selection(fast=False, keys=tuple(name for name in KNOWN_FIELDS if name in wanted))


class DeviceStore:
    """All devices of a tenant. Indexes are permanent; deleted devices keep their slot."""

    def __init__(self, object_ids: IndexedGuids, device_ids: IndexedGuids) -> None:
        self.object_ids = object_ids
        self.device_ids = device_ids
        self.core: list[bytes] = []
        self.prof = array("H")
        self.ext: dict[int, bytes] = {}
        self.enabled = bytearray()
        self.signin = array("q")
        self.registered = array("q")
        self.onprem_sync = array("q")
        self.names: list[str] = []
        self.deleted = bytearray()
        self.deleted_count = 0
        self.profiles: list[Profile] = []
        self._profile_index: dict[tuple[Any, ...], int] = {}
        self._name_index: dict[str, list[int]] | None = None
        self._heads: dict[str, array[int]] | None = None  # deviceId's first 1 ("x*") and 2 characters -> indexes
        self.version = 0  # bumped on every change (cached counts know when to refresh)

    # ------------------------------------------------------------------ size and identity

    def __len__(self) -> int:
        return len(self.core)

    @property
    def live_count(self) -> int:
        return len(self.core) - self.deleted_count

    def object_id(self, index: int) -> str:
        return self.core[index][_ID_SLICE].decode()

    def device_id(self, index: int) -> str | None:
        """The deviceId: sliced when it is a plain GUID (nearly always), else decoded (null, braces, other text)."""
        core = self.core[index]
        if core[_DEVICE_ID_SLICE.start - 1] == _QUOTE and core[_DEVICE_ID_SLICE.stop] == _QUOTE:
            return core[_DEVICE_ID_SLICE].decode()
        value: str | None = _decode(core + b"}")["deviceId"]
        return value

    def with_device_id_prefix(self, prefix: str) -> Sequence[int]:
        """Ascending indexes (deleted ones included) whose deviceId may start with `prefix` (any case): exactly those
        for one or two characters, a superset for longer prefixes. Built on first use, kept up to date after."""
        if self._heads is None:
            self._heads = {}
            for index in range(len(self.core)):
                self._index_head(index)
        key = prefix[:2].lower()
        return self._heads.get(key if len(key) == 2 else f"{key}*", ())

    def _index_head(self, index: int) -> None:
        """File a device under the first one and two (lowercased) characters of its deviceId."""
        assert self._heads is not None
        head = (self.device_id(index) or "")[:2].lower()
        for key in {f"{head[:1]}*", head} if head else ():
            self._heads.setdefault(key, array("I")).append(index)

    def find(self, object_id: str, *, include_deleted: bool = False) -> int | None:
        """Index of the device with this object id (GUID, any case)."""
        return self._resolve(object_id, self.object_ids, _ID_SLICE, include_deleted)

    def find_by_device_id(self, device_id: str, *, include_deleted: bool = False) -> int | None:
        return self._resolve(device_id, self.device_ids, _DEVICE_ID_SLICE, include_deleted)

    def _resolve(self, guid: str, codec: IndexedGuids, part: slice, include_deleted: bool) -> int | None:
        index = codec.index_of(guid)
        if index is None or index >= len(self.core) or self.core[index][part] != guid.lower().encode():
            return None
        if self.deleted[index] and not include_deleted:
            return None
        return index

    def find_by_name(self, name: str) -> list[int]:
        """Live devices whose displayName equals `name` (case-insensitive, as Graph compares)."""
        if self._name_index is None:
            index: dict[str, list[int]] = {}
            for i, value in enumerate(self.names):
                index.setdefault(value.lower(), []).append(i)
            self._name_index = index
        return [i for i in self._name_index.get(name.lower(), ()) if not self.deleted[i]]

    # ------------------------------------------------------------------ writing

    def profile_id(self, values: tuple[Any, ...]) -> int:
        """Intern a tuple of PROFILE_FIELDS values."""
        found = self._profile_index.get(values)
        if found is None:
            fields = dict(zip(PROFILE_FIELDS, values, strict=True))
            found = len(self.profiles)
            self.profiles.append(Profile(fields=fields, piece=b"," + _encode(fields)[1:-1]))
            self._profile_index[values] = found
        return found

    def append(
        self,
        core: Mapping[str, Any],
        profile: int,
        extension_attributes: Mapping[str, str | None] | None,
        *,
        signin: int,
        registered: int,
        onprem_sync: int,
    ) -> int:
        """Add a device. `core` holds CORE_FIELDS in order (timestamps as text); the ints mirror them."""
        index = len(self.core)
        self.core.append(_encode(core)[:-1])
        self.prof.append(profile)
        if extension_attributes and any(extension_attributes.values()):
            self.ext[index] = _ext_piece(extension_attributes)
        self.enabled.append(1 if core["accountEnabled"] else 0)
        self.signin.append(signin)
        self.registered.append(registered)
        self.onprem_sync.append(onprem_sync)
        self.names.append(core["displayName"] or "")
        self.deleted.append(0)
        if self._name_index is not None:
            self._name_index.setdefault(self.names[index].lower(), []).append(index)
        if self._heads is not None:
            self._index_head(index)
        self.version += 1
        return index

    def put(self, index: int, device: Mapping[str, Any]) -> None:
        """Replace a device with a full property dict (as `full()` returns), keeping its index."""
        core = {name: device.get(name) for name in CORE_FIELDS}
        old_name = self.names[index]
        if core["deviceId"] != self.device_id(index):
            self._heads = None  # rebuilt on next use (deviceIds change only out of band)
        self.core[index] = _encode(core)[:-1]
        self.prof[index] = self.profile_id(tuple(device.get(name) for name in PROFILE_FIELDS))
        ext = device.get(EXT_FIELD) or {}
        if any(ext.values()):
            self.ext[index] = _ext_piece(ext)
        else:
            self.ext.pop(index, None)
        self.enabled[index] = 1 if device.get("accountEnabled") else 0
        self.signin[index] = _ts(device.get("approximateLastSignInDateTime"))
        self.registered[index] = _ts(device.get("registrationDateTime"))
        self.onprem_sync[index] = _ts(device.get("onPremisesLastSyncDateTime"))
        self.names[index] = device.get("displayName") or ""
        if self._name_index is not None and old_name != self.names[index]:
            self._name_index.get(old_name.lower(), []).remove(index)
            self._name_index.setdefault(self.names[index].lower(), []).append(index)
        self.version += 1

    def delete(self, index: int) -> None:
        if not self.deleted[index]:
            self.deleted[index] = 1
            self.deleted_count += 1
            self.version += 1

    def undelete(self, index: int) -> None:
        """A deleted device exists again (restored from deleted items), in its old slot."""
        if self.deleted[index]:
            self.deleted[index] = 0
            self.deleted_count -= 1
            self.version += 1

    # ------------------------------------------------------------------ reading

    def full(self, index: int) -> dict[str, Any]:
        """Every stored property of a device as a Graph-shaped dict."""
        return _decode(self.core[index] + self.profiles[self.prof[index]].piece + self.ext.get(index, _NULL_EXT) + b"}")

    def profile_fields(self, index: int) -> Mapping[str, Any]:
        return self.profiles[self.prof[index]].fields

    def render_array(self, indexes: Sequence[int], selection: Selection) -> bytes:
        """The JSON array body (`{...},{...}`, no brackets) of these devices: one join, no per-device copies."""
        if not selection.fast:
            return b",".join(self.render(indexes, selection))
        core, prof, pieces = self.core, self.prof, [p.piece for p in self.profiles]
        parts: list[bytes] = []
        append = parts.append
        tail = selection.tail + b","
        if selection.with_ext:
            ext_get, null = self.ext.get, _NULL_EXT
            for i in indexes:
                append(core[i])
                append(pieces[prof[i]])
                append(ext_get(i, null))
                append(tail)
        else:
            for i in indexes:
                append(core[i])
                append(pieces[prof[i]])
                append(tail)
        return b"".join(parts)[:-1]

    def render(self, indexes: Iterable[int], selection: Selection) -> list[bytes]:
        """JSON objects of these devices for a page."""
        core, prof, pieces = self.core, self.prof, [p.piece for p in self.profiles]
        tail = selection.tail
        if selection.fast and selection.with_ext:
            ext, null = self.ext, _NULL_EXT
            return [core[i] + pieces[prof[i]] + ext.get(i, null) + tail for i in indexes]
        if selection.fast:
            return [core[i] + pieces[prof[i]] + tail for i in indexes]
        keys, other = selection.keys, OTHER_FIELDS
        out = []
        for i in indexes:
            device = self.full(i)
            out.append(_encode({key: device[key] if key in device else other[key] for key in keys}))
        return out


def _ext_piece(values: Mapping[str, str | None]) -> bytes:
    return b',"extensionAttributes":' + _encode({key: values.get(key) for key in EXT_KEYS})


def _ts(value: str | None) -> int:
    return timefmt.NULL if value is None else timefmt.parse(value)
