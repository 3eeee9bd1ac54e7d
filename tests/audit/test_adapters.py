"""Both audit adapters, same cases: append, every filter, paging, tampering, outages, concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.audit import SqliteAuditLog, TableAuditLog, open_audit_log
from shared.audit.chain import GENESIS, compute_hash
from shared.audit.matching import matches
from shared.errors import AuditUnavailable, ConfigError
from shared.ports import AuditEntry, AuditPage, AuditQuery
from tests.audit.conftest import ROOT, START, StepClock, Store, fill, sample_entries
from tests.fixtures.azurite import free_port


async def all_records(audit, query: AuditQuery) -> list:
    return [r async for r in audit.iter_records(query)]


async def test_append_chains_records_through_the_days(store: Store) -> None:
    records = await fill(store.log())
    assert records[0].partition == "2025-03-01" and records[-1].partition == "2025-03-02"
    assert records[0].seq == 1 and records[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
        assert after.seq == (before.seq + 1 if after.partition == before.partition else 1)
        assert after.at > before.at
    for r in records:
        assert r.record_id == f"{r.partition}:{r.seq:010d}"
        assert r.hash == compute_hash(r.partition, r.seq, r.at, r.entry, r.prev_hash)
    stored = await all_records(store.log(), AuditQuery())
    assert stored == records
    assert await store.log().verify() == []


async def test_an_empty_log_answers_empty(store: Store) -> None:
    audit = store.log()
    assert await audit.query(AuditQuery(), limit=10) == AuditPage([], None)
    assert await all_records(audit, AuditQuery(device="x")) == []
    assert await audit.verify() == [] and await audit.verify(since=START) == []


async def test_entries_are_normalised_before_hashing(store: Store) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = await store.log().append(AuditEntry(kind="notice", data={"when": when, "ids": ("a", "b"), 7: {1, 2}}))
    assert record.entry.data == {"when": "2024-01-02T03:04:05Z", "ids": ["a", "b"], "7": [1, 2]}
    [stored] = await all_records(store.log(), AuditQuery())
    assert stored == record
    assert (await store.log().append(AuditEntry(kind="notice", data={"nan": float("nan")}))).entry.data == {"nan": None}
    with pytest.raises(TypeError):
        await store.log().append(AuditEntry(kind="notice", data={"bad": object()}))


async def test_large_data_is_split_in_the_table_and_truncated_past_the_limit(store: Store) -> None:
    audit = store.log()
    big = {"blob": "é🙂" * 40_000}  # 80,000 characters: six Table properties, over 64 KiB as one
    record = await audit.append(AuditEntry(kind="notice", data=big))
    assert record.entry.data == big
    huge = await audit.append(AuditEntry(kind="notice", data={"blob": "x" * 300_000}))
    assert huge.entry.data["_truncated"] is True and huge.entry.data["original_chars"] > 300_000
    assert len(huge.entry.data["preview"]) == 2_000
    assert await all_records(store.log(), AuditQuery()) == [record, huge]
    if store.backend == "table":
        raw = store.raw_data(record.partition, record.seq)
        assert raw["data_parts"] == 6 and all(len(raw[f"data_{i}"]) <= 15_000 for i in range(1, 6))
    assert await store.log().verify() == []


QUERIES = [
    AuditQuery(),
    AuditQuery(run_id="run-0302"),
    AuditQuery(command_id="run-0301-cmd3"),
    AuditQuery(device="DESKTOP-B2"),  # display name, any case
    AuditQuery(device="00000002-AAAA-BBBB-CCCC-000000000001"),  # object id, other case
    AuditQuery(device="ddddddd4-1111-2222-3333-000000000000"),  # deviceId
    AuditQuery(device="iphone de zoë"),
    AuditQuery(decision="blocked"),
    AuditQuery(action="delete"),
    AuditQuery(ticket="INC-42"),
    AuditQuery(kind="run"),
    AuditQuery(since=datetime(2025, 3, 2, tzinfo=UTC)),
    AuditQuery(until=datetime(2025, 3, 2, tzinfo=UTC)),
    AuditQuery(since=START + timedelta(hours=1), until=START + timedelta(hours=3, minutes=3)),
    AuditQuery(since=START + timedelta(hours=1), until=START + timedelta(hours=1)),
    AuditQuery(run_id="run-0301", action="disable", decision="acted", kind="decision"),
    AuditQuery(device="desktop-a1", since=datetime(2025, 3, 2, tzinfo=UTC)),
    AuditQuery(run_id="no-such-run"),
]


async def test_every_filter_selects_what_the_reference_selects(store: Store) -> None:
    records = await fill(store.log())
    audit = store.log()
    for query in QUERIES:
        expected = [r for r in records if matches(r, query)]
        assert await all_records(audit, query) == expected, query
    # the reference itself: desktop-b2 has a decision in run 1, intent + outcome + decision in run 2, and the ticket
    assert [r.entry.kind for r in records if matches(r, AuditQuery(device="DESKTOP-B2"))] == [
        "decision", "intent", "outcome", "decision", "ticket",
    ]  # fmt: skip
    assert [r.entry.kind for r in records if matches(r, AuditQuery(run_id="run-0301", action="disable", decision="acted"))] == [
        "decision"
    ]


async def test_paging_walks_every_record_once_in_order(store: Store) -> None:
    records = await fill(store.log())
    audit = store.log()
    for query in (AuditQuery(), AuditQuery(kind="decision"), AuditQuery(since=datetime(2025, 3, 1, 23, tzinfo=UTC))):
        expected = [r for r in records if matches(r, query)]
        seen, token, pages = [], None, 0
        while True:
            page = await audit.query(query, limit=4, continuation=token)
            assert len(page.records) <= 4
            seen.extend(page.records)
            pages += 1
            token = page.continuation
            if token is None:
                break
        assert seen == expected
        assert pages == max(1, -(-len(expected) // 4))


async def test_both_adapters_answer_identically(tmp_path: Path, azurite, azurite_table_name: str) -> None:
    """Same entries, same clock -> same records, hashes, pages and continuation tokens."""
    sqlite_log = SqliteAuditLog(tmp_path / "a.sqlite3", clock=StepClock(START, timedelta(minutes=7)))
    table_log = TableAuditLog(azurite.connection_string, azurite_table_name, clock=StepClock(START, timedelta(minutes=7)))
    try:
        assert await fill(sqlite_log) == await fill(table_log)
        for query in QUERIES:
            token_a = token_b = None
            while True:
                page_a = await sqlite_log.query(query, limit=5, continuation=token_a)
                page_b = await table_log.query(query, limit=5, continuation=token_b)
                assert page_a == page_b, query
                token_a, token_b = page_a.continuation, page_b.continuation
                if token_a is None:
                    break
    finally:
        await sqlite_log.close()
        await table_log.close()


async def test_verify_catches_an_edited_record(store: Store) -> None:
    records = await fill(store.log())
    target = records[5]
    store.edit(target.partition, target.seq, reason="nothing to see here")
    breaks = await store.log().verify()
    assert [(b.partition, b.seq) for b in breaks] == [(target.partition, target.seq)]
    assert "hash mismatch" in breaks[0].problem


async def test_verify_catches_a_deleted_record(store: Store) -> None:
    records = await fill(store.log())
    target = records[3]
    store.delete(target.partition, target.seq)
    breaks = await store.log().verify()
    assert [(b.partition, b.seq) for b in breaks] == [(target.partition, target.seq + 1)]
    assert f"seq {target.seq} missing" in breaks[0].problem


async def test_verify_catches_reordered_records(store: Store) -> None:
    records = await fill(store.log())
    a, b = records[6], records[7]
    assert a.partition == b.partition
    store.swap(a.partition, a.seq, b.seq)
    breaks = await store.log().verify()
    assert [(x.partition, x.seq) for x in breaks][:1] == [(a.partition, a.seq)]
    assert {x.seq for x in breaks} <= {a.seq, b.seq, b.seq + 1}  # the record after them no longer links either


async def test_verify_catches_records_cut_from_the_end_of_a_day(store: Store) -> None:
    records = await fill(store.log())
    last_of_day = [r for r in records if r.partition == "2025-03-02"][-1]
    store.delete(last_of_day.partition, last_of_day.seq)
    breaks = await store.log().verify()
    assert len(breaks) == 1 and "records at the end deleted" in breaks[0].problem


async def test_verify_catches_a_whole_day_deleted(store: Store) -> None:
    clock = StepClock(datetime(2025, 3, 1, 12, tzinfo=UTC), timedelta(hours=8))  # three records a day
    audit = store.log(clock=clock)
    records = [await audit.append(AuditEntry(kind="notice", reason=str(i))) for i in range(9)]
    assert [r.partition for r in records[::3]] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    assert await store.log().verify() == []
    store.delete_day("2025-03-02")
    breaks = await store.log().verify()
    assert [(b.partition, b.seq) for b in breaks] == [("2025-03-03", 1)]
    assert "2025-03-01" in breaks[0].problem
    ranged = await store.log().verify(since=datetime(2025, 3, 3, tzinfo=UTC))
    assert [(b.partition, b.seq) for b in ranged] == [("2025-03-03", 1)]  # the link to the day before is checked too


async def test_verify_reports_an_unreadable_row(store: Store) -> None:
    records = await fill(store.log())
    store.edit(records[2].partition, records[2].seq, data="{not json")
    breaks = await store.log().verify()
    assert [(b.partition, b.seq) for b in breaks] == [(records[2].partition, records[2].seq)]
    assert "unreadable" in breaks[0].problem


async def test_store_down_raises_audit_unavailable(store: Store, tmp_path: Path) -> None:
    if store.backend == "sqlite":
        (tmp_path / "not-a-dir").write_text("a file where the folder should be")
        down = SqliteAuditLog(tmp_path / "not-a-dir" / "audit.sqlite3")
    else:
        conn = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:{free_port()}/x;"
        down = TableAuditLog(conn, "audit", retry_total=0)
    with pytest.raises(AuditUnavailable, match="cannot be used"):
        await down.append(AuditEntry(kind="intent", command_id="c1"))
    with pytest.raises(AuditUnavailable):
        await down.query(AuditQuery())
    await down.close()


async def test_sqlite_locked_by_another_writer_raises_audit_unavailable(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "audit.sqlite3"
    audit = SqliteAuditLog(path, busy_timeout=0.2)
    await audit.append(AuditEntry(kind="notice"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(AuditUnavailable, match="locked"):
            await audit.append(AuditEntry(kind="intent"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await audit.append(AuditEntry(kind="intent"))).seq == 2
    await audit.close()


async def test_concurrent_appenders_keep_one_chain(store: Store) -> None:
    clock = StepClock(START, timedelta(milliseconds=1))
    writers = [store.log(clock=clock) for _ in range(4)]

    async def write(index: int, audit) -> list:
        return [await audit.append(AuditEntry(kind="notice", reason=f"w{index}-{n}")) for n in range(12)]

    results = await asyncio.gather(*(write(i, w) for i, w in enumerate(writers)))
    written = sorted((r for batch in results for r in batch), key=lambda r: (r.partition, r.seq))
    assert [r.seq for r in written] == list(range(1, 49))
    stored = await all_records(store.log(), AuditQuery())
    assert stored == written
    assert await store.log().verify() == []


async def test_concurrent_appends_in_one_process_share_transactions(store: Store) -> None:
    audit = store.log(clock=StepClock(START, timedelta(milliseconds=1)))
    commits: list[int] = []
    commit = audit._commit

    async def counting(entries):
        commits.append(len(entries))
        return await commit(entries)

    audit._group._flush = counting
    records = await asyncio.gather(*(audit.append(AuditEntry(kind="notice", reason=str(i))) for i in range(60)))
    assert [r.entry.reason for r in records] == [str(i) for i in range(60)]  # each caller gets its own record
    assert sorted(r.seq for r in records) == list(range(1, 61))
    assert sum(commits) == 60 and len(commits) < 10  # group commit: a few transactions, not 60
    assert await store.log().verify() == []


_WRITER = """
import asyncio, sys
from shared.audit import SqliteAuditLog
from shared.ports import AuditEntry

async def go(path, label):
    audit = SqliteAuditLog(path)
    for n in range(25):
        await audit.append(AuditEntry(kind="notice", reason=f"{label}-{n}"))
    await audit.close()

asyncio.run(go(sys.argv[1], sys.argv[2]))
"""


async def test_sqlite_appends_from_several_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", _WRITER, str(path), f"p{i}", cwd=ROOT) for i in range(3)]
    for proc in procs:
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    audit = SqliteAuditLog(path)
    records = await all_records(audit, AuditQuery())
    assert len(records) == 75
    for before, after in itertools.pairwise(records):  # one chain: each record follows the one before
        assert after.prev_hash == before.hash
        assert after.seq == (before.seq + 1 if after.partition == before.partition else 1)
    assert {r.entry.reason.split("-")[0] for r in records} == {"p0", "p1", "p2"}
    assert await audit.verify() == []
    await audit.close()


async def test_table_day_rollover_seals_the_old_day(azurite, azurite_table_name: str) -> None:
    """A writer whose clock is still on the old day joins the new day once another writer started it."""
    early = StepClock(datetime(2025, 3, 1, 23, 59, 50, tzinfo=UTC), timedelta(milliseconds=1))
    late = StepClock(datetime(2025, 3, 2, 0, 0, 1, tzinfo=UTC), timedelta(milliseconds=1))
    first = TableAuditLog(azurite.connection_string, azurite_table_name, clock=early)
    second = TableAuditLog(azurite.connection_string, azurite_table_name, clock=late)
    try:
        a = await first.append(AuditEntry(kind="notice", reason="day one"))
        b = await second.append(AuditEntry(kind="notice", reason="day two"))
        c = await first.append(AuditEntry(kind="notice", reason="late writer"))  # cached head is sealed now
        assert (a.partition, b.partition, c.partition) == ("2025-03-01", "2025-03-02", "2025-03-02")
        assert b.prev_hash == a.hash and c.prev_hash == b.hash and c.seq == 2
        assert c.at >= datetime(2025, 3, 2, tzinfo=UTC)
        assert await first.verify() == []
    finally:
        await first.close()
        await second.close()


async def test_append_many_is_one_chain(store: Store) -> None:
    audit = store.log()
    entries = sample_entries() * 5  # 150+ entries: more than one Table transaction
    records = await audit.append_many(entries)
    assert [r.entry for r in records] == [dataclasses.replace(e, data=dict(e.data)) for e in entries]
    assert await all_records(store.log(), AuditQuery()) == records
    assert await store.log().verify() == []


async def test_open_audit_log_picks_the_backend_from_settings(tmp_path: Path) -> None:
    audit = open_audit_log({"JANITOR_DATA_DIR": str(tmp_path)})
    assert isinstance(audit, SqliteAuditLog) and audit.path == tmp_path / "audit.sqlite3"
    table = open_audit_log({"AUDIT_BACKEND": "table", "AUDIT_TABLE_CONNECTION_STRING": "UseDevelopmentStorage=true"})
    assert isinstance(table, TableAuditLog) and table.table == "janitoraudit"
    with pytest.raises(ConfigError, match="AUDIT_TABLE_ENDPOINT"):
        open_audit_log({"AUDIT_BACKEND": "table"})
    with pytest.raises(ConfigError, match="AUDIT_TABLE_ENDPOINT"):
        open_audit_log({"AUDIT_BACKEND": "table", "AUDIT_TABLE_ENDPOINT": "not a url"})
    with pytest.raises(ConfigError, match="AUDIT_BACKEND"):
        open_audit_log({"AUDIT_BACKEND": "cosmos"})
    with pytest.raises(ConfigError, match="AUDIT_TABLE_NAME"):
        open_audit_log({"AUDIT_BACKEND": "table", "AUDIT_TABLE_NAME": "bad-name", "AUDIT_TABLE_CONNECTION_STRING": "x"})
    identity = open_audit_log(
        {"AUDIT_BACKEND": "table", "AUDIT_TABLE_ENDPOINT": "https://acct.table.core.windows.net", "AZURE_CLIENT_ID": "abc"}
    )
    assert type(identity._credential).__name__ == "ManagedIdentityCredential"
    await identity.close()
