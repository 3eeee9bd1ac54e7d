"""The error-code catalogue is data with a source per entry, and covers the codes tickets quote most."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from shared.diagnosis import lookup
from shared.diagnosis.catalogue import entries

REQUIRED = (
    "0x801c03f2",
    "0x80180018",
    "0x801c0003",
    "0x801c001d",
    "0x80070774",
    "0x801c03f3",
    "0x8018002b",
    "0x80180014",
    "0x801c0002",
)


@pytest.mark.parametrize("code", REQUIRED)
def test_required_codes_are_catalogued(code: str) -> None:
    entry = lookup(code.upper().replace("0X", "0x"))
    assert entry is not None, code
    assert entry.code == code


def test_every_entry_is_complete_and_sourced() -> None:
    catalogue = entries()
    assert len(catalogue) >= 30
    for code, entry in catalogue.items():
        assert code.startswith("0x") and len(code) == 10
        assert len(entry.meaning) > 20 and len(entry.next_step) > 20, code
        assert entry.stage in (None, 1, 2, 3, 4, 5), code
        source = urlsplit(entry.source)
        assert source.scheme == "https" and source.hostname == "learn.microsoft.com", (code, entry.source)


def test_unknown_and_malformed_codes() -> None:
    assert lookup("0x12345678") is None
    assert lookup("not a code") is None


def test_stage_hints_follow_the_meaning() -> None:
    assert lookup("0x801c0003").stage == 1  # not authorized to join: eligibility
    assert lookup("0x80072ee2").stage == 4  # network timeout: connectivity
    assert lookup("0xc000006d").stage == 5  # PRT acquisition: downstream
    assert lookup("0x801c03f3").stage == 3  # object deleted under the device: mismatch
