"""The pure hash chain: canonical encoding, placement of the next record, and the verifier's verdicts."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.audit.chain import (
    GENESIS,
    MAX_FIELD_CHARS,
    MAX_REASON_CHARS,
    ChainWalker,
    Head,
    canonical,
    compute_hash,
    next_position,
    normalize_entry,
    partition_of,
    seal,
)
from shared.ports import AuditEntry, AuditRecord

AT = datetime(2025, 3, 1, 2, 3, 4, 500, tzinfo=UTC)


def test_canonical_encoding_is_pinned() -> None:
    """Changing the encoding would make every stored hash fail: this pins it byte for byte."""
    entry = AuditEntry(kind="decision", run_id="r1", decision="acted", action="disable", data={"b": 1, "a": ["é", None]})
    expected = (
        '{"at":"2025-03-01T02:03:04.000500Z","entry":{"action":"disable","actor":"entra-janitor","command_id":null,'
        '"data":{"a":["é",null],"b":1},"decision":"acted","device_id":null,"device_object_id":null,"display_name":null,'
        '"kind":"decision","reason":null,"run_id":"r1","ticket":null},"partition":"2025-03-01","prev_hash":"'
        + GENESIS
        + '","seq":1,"v":1}'
    ).encode()
    assert canonical("2025-03-01", 1, AT, entry, GENESIS) == expected
    assert compute_hash("2025-03-01", 1, AT, entry, GENESIS) == hashlib.sha256(expected).hexdigest()


def test_every_field_is_covered_by_the_hash() -> None:
    entry = normalize_entry(AuditEntry(kind="decision", run_id="r1", reason="x", data={"k": "v"}))
    base = compute_hash("2025-03-01", 3, AT, entry, GENESIS)
    variants = [
        compute_hash("2025-03-02", 3, AT, entry, GENESIS),
        compute_hash("2025-03-01", 4, AT, entry, GENESIS),
        compute_hash("2025-03-01", 3, AT + timedelta(microseconds=1), entry, GENESIS),
        compute_hash("2025-03-01", 3, AT, entry, "1" * 64),
        compute_hash("2025-03-01", 3, AT, replace(entry, data={"k": "w"}), GENESIS),
    ]
    for name in ("kind", "run_id", "command_id", "ticket", "device_object_id", "device_id", "display_name", "decision"):
        variants.append(compute_hash("2025-03-01", 3, AT, replace(entry, **{name: "other"}), GENESIS))
    for name in ("action", "reason", "actor"):
        variants.append(compute_hash("2025-03-01", 3, AT, replace(entry, **{name: "other"}), GENESIS))
    assert base not in variants and len(set(variants)) == len(variants)


def test_normalize_clips_long_text_and_checks_types() -> None:
    entry = normalize_entry(AuditEntry(kind="notice", reason="r" * 20_000, display_name="n" * 5_000))
    assert len(entry.reason or "") == MAX_REASON_CHARS and (entry.reason or "").endswith("…[truncated]")
    assert len(entry.display_name or "") == MAX_FIELD_CHARS
    with pytest.raises(ValueError, match="kind"):
        normalize_entry(AuditEntry(kind=""))
    with pytest.raises(TypeError, match="run_id"):
        normalize_entry(AuditEntry(kind="notice", run_id=7))  # type: ignore[arg-type]


def test_next_position_moves_forward_only() -> None:
    head = Head("2025-03-01", 5, "h" * 64)
    head_at = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)
    assert next_position(None, None, AT) == ("2025-03-01", 1, AT, GENESIS)
    same = next_position(head, head_at, head_at + timedelta(minutes=5))
    assert same[:2] == ("2025-03-01", 6) and same[3] == head.hash
    new_day = next_position(head, head_at, datetime(2025, 3, 2, 0, 1, tzinfo=UTC))
    assert new_day[:2] == ("2025-03-02", 1) and new_day[3] == head.hash  # the new day links to the old one
    behind = next_position(head, head_at, head_at - timedelta(hours=3))  # a clock behind the head's
    assert behind == ("2025-03-01", 6, head_at, head.hash)
    ahead = Head("2025-03-04", 2, "a" * 64)  # the head's day is later than this clock says
    position = next_position(ahead, datetime(2025, 3, 4, 0, 0, 1, tzinfo=UTC), datetime(2025, 3, 3, 12, tzinfo=UTC))
    assert position[:2] == ("2025-03-04", 3) and partition_of(position[2]) == "2025-03-04"


def _chain(count: int, day: str = "2025-03-01", prev: str = GENESIS) -> list[AuditRecord]:
    records, start = [], datetime.fromisoformat(day).replace(tzinfo=UTC)
    for seq in range(1, count + 1):
        record = seal(day, seq, start + timedelta(minutes=seq), normalize_entry(AuditEntry(kind="notice", reason=str(seq))), prev)
        records.append(record)
        prev = record.hash
    return records


def _walk(days: dict[str, list[AuditRecord]], heads: dict[str, Head] | None = None) -> list:
    walker = ChainWalker()
    for day, records in days.items():
        walker.start(day, (heads or {}).get(day))
        for record in records:
            walker.record(record)
    return walker.finish()


def test_walker_accepts_an_intact_chain_and_counts() -> None:
    day1 = _chain(3)
    day2 = _chain(2, "2025-03-02", day1[-1].hash)
    heads = {"2025-03-01": Head("2025-03-01", 3, day1[-1].hash), "2025-03-02": Head("2025-03-02", 2, day2[-1].hash)}
    walker = ChainWalker()
    for day, records in (("2025-03-01", day1), ("2025-03-02", day2)):
        walker.start(day, heads[day])
        for record in records:
            walker.record(record)
    assert walker.finish() == [] and walker.records == 5 and walker.partitions == 2


def test_walker_names_each_kind_of_damage() -> None:
    records = _chain(4)
    assert "seq 1 missing" in _walk({"2025-03-01": records[1:]})[0].problem
    assert "seq 2-3 missing" in _walk({"2025-03-01": [records[0], records[3]]})[0].problem
    moved = replace(records[1], at=datetime(2025, 3, 5, tzinfo=UTC))
    assert "outside its day" in _walk({"2025-03-01": [records[0], moved, *records[2:]]})[0].problem
    forged_link = seal("2025-03-01", 2, records[1].at, records[1].entry, "f" * 64)  # rehashed, but linked wrongly
    assert "prev_hash does not match seq 1" in _walk({"2025-03-01": [records[0], forged_link]})[0].problem
    head = Head("2025-03-01", 2, records[1].hash)
    assert "after the day head" in _walk({"2025-03-01": records}, {"2025-03-01": head})[0].problem
    wrong_head = Head("2025-03-01", 4, "0" * 64)
    assert "head hash" in _walk({"2025-03-01": records}, {"2025-03-01": wrong_head})[0].problem
    stray = _chain(1, "2025-03-02", "e" * 64)
    breaks = _walk({"2025-03-01": records, "2025-03-02": stray})
    assert [(b.partition, b.seq) for b in breaks] == [("2025-03-02", 1)] and "2025-03-01" in breaks[0].problem
