"""The error-code catalogue: meaning and next step of common registration codes, kept as data.

`error_codes.json` (next to this module) holds one entry per code with the page it was taken from, so
support staff can check the wording at the source and extend the list without touching code.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import msgspec

from shared.diagnosis.dsregcmd import normalise_code


class CatalogueEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str
    symbol: str | None
    meaning: str
    next_step: str
    stage: int | None
    source: str
    phase: str | None = None


class _Catalogue(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    about: str
    codes: list[CatalogueEntry]


@cache
def entries() -> dict[str, CatalogueEntry]:
    """Every catalogued code, keyed by its normalised form (0x + 8 lowercase hex digits)."""
    raw = resources.files("shared.diagnosis").joinpath("error_codes.json").read_bytes()
    catalogue = msgspec.json.decode(raw, type=_Catalogue)
    out: dict[str, CatalogueEntry] = {}
    for entry in catalogue.codes:
        key = normalise_code(entry.code)
        if key in out:
            raise ValueError(f"error_codes.json lists {key} twice")
        out[key] = entry
    return out


def lookup(code: str) -> CatalogueEntry | None:
    """The entry for a code written any way dsregcmd prints it ('0x801C03F2', '0x801c03f2'); None when unknown."""
    try:
        return entries().get(normalise_code(code))
    except ValueError:
        return None
