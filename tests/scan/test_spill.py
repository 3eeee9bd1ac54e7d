"""The scan's disk spill: rows of one key always come back together; devices survive packing exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.models import AlternativeSecurityId, Device, ExtensionAttributes
from shared.scan.packing import pack, unpack
from shared.scan.spill import PartitionSpill
from tests.classify.devices import device


def test_rows_of_one_key_share_a_partition_across_flushes_and_keep_their_order():
    with PartitionSpill(7, flush_rows=5) as spill:
        for i in range(200):
            spill.add(f"name-{i % 23}", [f"name-{i % 23}", i])
        for i in range(10):
            spill.add(None, [None, 1000 + i])
        partitions = list(spill.partitions())
        assert spill.count == 210 and spill.bytes_written > 0
    assert 1 < len(partitions) <= 7
    seen: dict[str, int] = {}
    for index, rows in enumerate(partitions):
        for key, _ in rows:
            if key is not None:
                assert seen.setdefault(key, index) == index  # never split across partitions
    everything = [row for rows in partitions for row in rows]
    assert sorted(value for _, value in everything) == list(range(200)) + list(range(1000, 1010))
    for rows in partitions:
        values = [value for key, value in rows if key == "name-3"]
        assert values == sorted(values)


def test_rows_streams_every_row_one_chunk_at_a_time():
    with PartitionSpill(1, flush_rows=4) as spill:
        for i in range(10):
            spill.add(None, (i, b"body"))
        rows = spill.rows()
        assert next(rows) == [0, b"body"]
        assert [value for value, _ in rows] == list(range(1, 10))


def test_an_empty_spill_has_no_partitions():
    with PartitionSpill() as spill:
        assert list(spill.partitions()) == []


_when = st.one_of(st.none(), st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))


@settings(max_examples=200, deadline=None)
@given(
    name=st.one_of(st.none(), st.text(max_size=20)),
    enabled=st.one_of(st.none(), st.booleans()),
    signed_in=_when,
    physical=st.lists(st.text(max_size=12), max_size=3),
    keys=st.lists(st.one_of(st.none(), st.text(max_size=10)), max_size=2),
    ext=st.one_of(st.none(), st.text(max_size=30)),
)
def test_packing_round_trips_any_device(name, enabled, signed_in, physical, keys, ext):
    d = device(
        display_name=name, account_enabled=enabled, approximate_last_sign_in_date_time=signed_in, physical_ids=physical,
        alternative_security_ids=[AlternativeSecurityId(type=2, key=k) for k in keys],
        extension_attributes=None if ext is None else ExtensionAttributes(extension_attribute7=ext),
    )
    assert unpack(pack(d)) == d
    bare = Device(id="x")
    assert unpack(pack(bare)) == bare
