"""GUIDs that carry their own array index, so a million objects need no id -> index dictionary.

The first 8 hex digits are a keyed bijection of the index (an affine map modulo 2**32); the rest is random.
Looking an id up inverts the map and then compares the full text with the stored id, so a made-up or
mistyped GUID never resolves to the wrong object.
"""

from __future__ import annotations

import random

_MASK = 0xFFFFFFFF


class IndexedGuids:
    """Mints and resolves GUIDs for one kind of object (devices, device ids, ...) of one tenant."""

    def __init__(self, rng: random.Random) -> None:
        self._mul = rng.getrandbits(32) | 1
        self._add = rng.getrandbits(32)
        self._inv = pow(self._mul, -1, 1 << 32)

    def make(self, index: int, rng: random.Random) -> str:
        """A version-4 shaped GUID whose first group encodes `index` (0 <= index < 2**32)."""
        head = (index * self._mul + self._add) & _MASK
        tail = f"{rng.getrandbits(96):024x}"
        variant = "89ab"[int(tail[7], 16) & 3]
        return f"{head:08x}-{tail[0:4]}-4{tail[4:7]}-{variant}{tail[8:11]}-{tail[12:24]}"

    def index_of(self, guid: str) -> int | None:
        """The index a GUID of this kind would have; the caller still compares the full text."""
        if len(guid) != 36 or guid[8] != "-":
            return None
        try:
            head = int(guid[:8], 16)
        except ValueError:
            return None
        return ((head - self._add) * self._inv) & _MASK
