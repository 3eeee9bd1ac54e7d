"""The partitioned read: disjoint deviceId partitions, the completeness guard and its serial fallback, the same
findings and commands whatever the partition count, and the progress it reports."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec
import pytest

from shared.commands import decode
from shared.errors import ConfigError
from shared.graph import GraphGateway
from shared.models import DEVICE_SELECT
from shared.policy import Policy, parse_policy, policy_from_data
from shared.scan import run_scan
from shared.scan.partitions import (
    HEX,
    REST_FILTER,
    Partition,
    ReadPlan,
    completeness_problem,
    partitions_for,
)
from shared.scan.progress import TenthsLog
from shared.scan.service import ScanProgress
from shared.scan.spill import BlobStore, PartitionSpill
from simulator import Tenant, run_simulator
from simulator.irregular import add_irregular_devices
from tests.classify.devices import device
from tests.scan.fakes import FakeAudit, FakeGraph, FakeQueue

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
ODD_IDS = [None, "", "{0A1B2C3D-0000-4000-8000-000000000000}", "zz-not-a-guid", "Ab-12", "a-b", "7f", "F00D"]


# --------------------------------------------------------------------------- partitions


@pytest.mark.parametrize("count", [16, 256])
def test_partitions_are_disjoint_and_every_hex_led_device_id_is_in_exactly_one(count):
    partitions = partitions_for(count)
    assert len(partitions) == count + 1 and partitions[0] == Partition(None)
    samples = [f"{a}{b}{c}" for a in HEX for b in HEX for c in "0f"] + [s.upper() for s in ("ab", "c0", "ff")]
    for device_id in samples:
        assert sum(p.covers(device_id) for p in partitions) == 1, device_id
    assert partitions_for(1) == [Partition("")] and Partition("").filter is None


def test_the_rest_partition_takes_every_device_id_that_does_not_start_with_a_hex_digit():
    rest = Partition(None)
    assert rest.filter == REST_FILTER and REST_FILTER.startswith("not(startsWith(deviceId,'0') or ")
    assert [rest.covers(i) for i in ODD_IDS] == [True, True, True, True, False, False, False, False]
    sixteen = partitions_for(16)
    for device_id in ODD_IDS:  # with 16 partitions every deviceId, hex-led or not, is in exactly one
        assert sum(p.covers(device_id) for p in sixteen) == 1, device_id
    assert Partition("a").filter == "startsWith(deviceId,'a')"


def test_read_plans_from_settings():
    assert ReadPlan.from_settings({}) == ReadPlan(16, 16)
    assert ReadPlan.from_settings({"SCAN_PARTITIONS": "256", "SCAN_CONCURRENCY": "32"}) == ReadPlan(256, 32)
    for env, setting in (({"SCAN_PARTITIONS": "8"}, "SCAN_PARTITIONS"), ({"SCAN_CONCURRENCY": "33"}, "SCAN_CONCURRENCY"),
                         ({"SCAN_CONCURRENCY": "0"}, "SCAN_CONCURRENCY"), ({"SCAN_PARTITIONS": "many"}, "SCAN_PARTITIONS")):
        with pytest.raises(ConfigError) as caught:
            ReadPlan.from_settings(env)
        assert caught.value.setting == setting
    with pytest.raises(ValueError, match="partitions"):
        ReadPlan(partitions=4)


def test_a_read_is_complete_when_creations_and_deletions_meanwhile_explain_the_total():
    assert completeness_problem(100, 100, 100, 0) is None
    assert completeness_problem(100, 103, 101, 0) is None  # created while the partitions were read
    assert completeness_problem(100, 97, 98, 0) is None  # deleted meanwhile
    assert "returned 99 devices" in completeness_problem(100, 100, 99, 0)
    assert "returned 104 devices" in completeness_problem(100, 103, 104, 0)
    assert "2 devices came back in a partition" in completeness_problem(10, 10, 10, 2)


# --------------------------------------------------------------------------- the guard, over in-memory ports


def fleet_with(device_ids):
    return [device(device_id=i) for i in device_ids]


async def scan(graph, plan=None, policy=None, **kw):
    return await run_scan(graph, FakeQueue(), FakeAudit(), policy or Policy(), now=NOW, reading=plan or ReadPlan(), **kw)


async def test_a_read_that_does_not_add_up_is_read_again_serially_and_says_why(caplog):
    fleet = fleet_with([f"{d}0000000-0000-4000-8000-00000000000{n}" for d in "0a" for n in range(3)])
    graph = FakeGraph(fleet, page_size=2)
    graph.counts = [len(fleet) + 2, len(fleet) + 2]
    with caplog.at_level(logging.WARNING, logger="shared.scan.partitions"):
        summary = await scan(graph)
    assert summary.devices_scanned == len(fleet) and summary.findings["healthy"] == len(fleet)
    reading = summary.reading
    assert reading["fallback"].startswith("read again serially: the partitions returned 6 devices")
    assert reading["counted_before"] == reading["counted_after"] == 8 and reading["devices_read"] == 6
    assert reading["fallback"] in summary.notes and "read again serially" in caplog.text
    assert graph.calls[-1] == (None, DEVICE_SELECT)  # the serial read, after every partition
    assert summary.pages == 3  # the discarded read's pages are not counted


async def test_devices_created_while_reading_do_not_discard_the_read():
    fleet = fleet_with([f"{d}0000000-0000-4000-8000-000000000000" for d in HEX])
    graph = FakeGraph(fleet)
    graph.counts = [len(fleet), len(fleet) + 1]
    summary = await scan(graph)
    assert summary.reading["fallback"] is None and summary.devices_scanned == 16
    assert None not in [call[0] for call in graph.calls]


async def test_a_server_that_ignores_the_filter_is_caught():
    fleet = fleet_with([f"{d}0000000-0000-4000-8000-000000000000" for d in "0123"])
    graph = FakeGraph(fleet)
    graph.ignore_filter = True  # every partition returns the whole fleet; the count says 4
    summary = await scan(graph)
    assert "devices came back in a partition their deviceId does not belong to" in summary.reading["fallback"]
    assert summary.devices_scanned == 4 and summary.findings["healthy"] == 4


@pytest.mark.parametrize(("count", "fallback"), [(16, False), (256, True)])
async def test_device_ids_that_are_not_guids_are_read_either_way(count, fallback):
    """256 partitions cannot name 'a-b' (hex, then not): the guard sees it missing and reads serially."""
    fleet = fleet_with([*ODD_IDS, "0a000000-0000-4000-8000-000000000000"])
    summary = await scan(FakeGraph(fleet), ReadPlan(count, 4))
    assert summary.devices_scanned == len(fleet) and (summary.reading["fallback"] is not None) == fallback


async def test_progress_carries_the_counted_total_and_the_partitions():
    fleet = fleet_with([f"{d}0000000-0000-4000-8000-000000000000" for d in HEX] * 2)
    events: list[ScanProgress] = []
    await scan(FakeGraph(fleet, page_size=1), ReadPlan(16, 4), progress=events.append)
    listing = [e for e in events if e.phase == "listing"]
    assert [e.devices for e in listing] == list(range(1, 33)) and {e.total for e in listing} == {32}
    assert {e.partitions for e in listing} == {17} and max(e.partitions_in_flight for e in listing) <= 4
    done = [e.partitions_done for e in listing]
    assert done == sorted(done) and done[-1] <= 17 and events[-1].phase == "done"


def test_spill_and_blob_store_forget_everything_on_reset():
    with PartitionSpill(4, flush_rows=2) as spill, BlobStore() as blobs:
        for n in range(5):
            spill.add(f"k{n}", [n])
            blobs.put(b"x" * 10)
        spill.reset()
        blobs.reset()
        spill.add("k", [99])
        offset = blobs.put(b"fresh")
        assert list(spill.rows()) == [[99]] and spill.count == 1
        assert offset == 0 and blobs.get(offset, 5) == b"fresh" and blobs.size == 5


def test_the_functions_log_gets_a_line_per_tenth():
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("test.tenths")
    logger.addHandler(Capture())
    logger.setLevel(logging.INFO)
    tenths = TenthsLog(logger)
    for devices in [0, 5, 99, 100, 101, 350, 999, 1000, 1000]:
        tenths(ScanProgress("listing", devices // 10, devices, 2.0, 1000, 17, 3, 4))
    tenths(ScanProgress("listing", 1, 40, 3.0, 1000, 1, 0, 1))  # a discarded read starts again
    tenths(ScanProgress("resolving", 100, 1000, 4.0, 1000, 1, 1, 0))
    assert [line.split(" %")[0] for line in lines] == ["scan: 10", "scan: 30", "scan: 90", "scan: 100"]
    assert lines[1] == "scan: 30 % read (350 of 1,000 devices, 35 pages, 3 of 17 partitions done, 4 in flight, 175 devices/s)"


# --------------------------------------------------------------------------- end to end over the simulator


@pytest.fixture(scope="module")
def irregular() -> Tenant:
    tenant = Tenant.generate(devices=3_000, seed=5, now=NOW, profile="stale20")
    add_irregular_devices(tenant, 6)
    return tenant


def commands_of(queue: FakeQueue) -> dict[str, tuple[str | None, bytes]]:
    """MessageId -> (subject, body without the run id): what would reach the worker."""
    out = {}
    for message_id, message in queue.messages.items():
        command = msgspec.structs.replace(decode(message.body), run_id="")
        out[message_id] = (message.subject, msgspec.json.encode(command))
    return out


async def test_the_same_fleet_yields_the_same_findings_and_commands_whatever_the_partition_count(irregular):
    policy = policy_from_data({**irregular.reference_policy(), "limits": {"max_destructive_per_run": 100_000,
                                                                          "max_destructive_fraction": 0.5}})
    runs = []
    async with run_simulator(irregular) as sim:
        for plan in (ReadPlan(1), ReadPlan(16, 5), ReadPlan(256, 16)):
            graph, queue, audit = GraphGateway(sim.base_url, None), FakeQueue(), FakeAudit()
            try:
                summary = await run_scan(graph, queue, audit, policy, now=NOW, reading=plan)
            finally:
                await graph.close()
            runs.append((summary, commands_of(queue)))
    (serial, serial_commands), *others = runs
    assert serial.findings == irregular.truth.class_counts() and serial.devices_scanned == 3_006
    assert serial_commands and any(b"IRREGULAR-" in body for _, body in serial_commands.values())
    for summary, commands in others:
        assert summary.reading["fallback"] is None and summary.reading["devices_read"] == 3_006
        assert summary.findings == serial.findings and summary.actions == serial.actions
        assert summary.breaker == serial.breaker and summary.destructive_proposed == serial.destructive_proposed
        assert commands == serial_commands


async def test_a_breaker_halt_blocks_the_same_commands_whatever_the_partition_count(irregular):
    policy = parse_policy("mode: enforce\n")
    blocked = []
    async with run_simulator(irregular) as sim:
        for plan in (ReadPlan(1), ReadPlan(16, 8)):
            graph, audit = GraphGateway(sim.base_url, None), FakeAudit()
            try:
                summary = await run_scan(graph, FakeQueue(), audit, policy, now=NOW, reading=plan)
            finally:
                await graph.close()
            assert summary.halted
            blocked.append(sorted(e.command_id for e in audit.of("decision")))
    assert blocked[0] and blocked[0] == blocked[1]


def test_the_terminal_progress_bar_shows_the_read_and_is_quiet_when_disabled():
    from io import StringIO

    from rich.console import Console

    from janitor_cli.scan import progress_display

    with progress_display(Console(file=StringIO()), enabled=False) as quiet:
        assert quiet is None
    out = StringIO()
    with progress_display(Console(file=out, force_terminal=True, width=200), enabled=True) as update:
        assert update is not None
        update(ScanProgress("listing", 3, 2_997, 1.5, 10_000, 17, 2, 16))
        update(ScanProgress("done", 11, 10_000, 2.0, 10_000, 17, 17, 0))
    text = out.getvalue()
    assert "10,000 of 10,000 devices" in text and "11 pages" in text and "0 of 17 partitions in flight" in text
    assert "5,000 devices/s" in text
