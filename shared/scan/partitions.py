"""Read /devices as disjoint partitions, several at once, and act only on a read shown to be complete.

Graph answers a page in about a second, so a serial read of a million devices takes a quarter of an hour.
The directory is cut by the first hex digits of deviceId (`startsWith(deviceId,'3')`, served without an
advanced query): 16 partitions by default, 256 for the largest tenants, 1 for the plain serial read. One
more partition, an advanced query (`not(startsWith(deviceId,'0') or ...)`), takes every object whose
deviceId does not start with a hex digit (null, braces, other text). Up to SCAN_CONCURRENCY partitions are
read at once; page requests go through an `AdaptiveLimit`, which backs off when Graph throttles.

Completeness guard: /devices/$count (eventually consistent) before and after the read. When the devices
read fall outside what the two counts allow (creations and deletions meanwhile can move the total between
them, no further), or a device came back in a partition it does not belong to, the read is discarded and
the directory is read again serially (Graph's own paging: complete by contract); the reason is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared import settings
from shared.errors import ConfigError
from shared.graph.concurrency import AdaptiveLimit
from shared.graph.query import literal
from shared.models import DEVICE_SELECT, Device
from shared.ports import GraphPort

log = logging.getLogger(__name__)

HEX = "0123456789abcdef"
PARTITION_CHOICES = (1, 16, 256)
MAX_CONCURRENCY = 32  # the Graph HTTP client keeps at most 32 connections (shared.graph.client)
#: Every object whose deviceId does not start with a hex digit (Graph: `not` needs an advanced query).
REST_FILTER = "not(" + " or ".join(f"startsWith(deviceId,{literal(digit)})" for digit in HEX) + ")"


@dataclass(frozen=True, slots=True)
class Partition:
    """One slice of /devices: deviceIds starting with `prefix`; "" is the whole directory, None the non-hex rest."""

    prefix: str | None

    @property
    def filter(self) -> str | None:
        if self.prefix is None:
            return REST_FILTER
        return f"startsWith(deviceId,{literal(self.prefix)})" if self.prefix else None

    def covers(self, device_id: str | None) -> bool:
        """Whether a device with this deviceId belongs here (Graph compares case-insensitively)."""
        if self.prefix == "":
            return True
        if self.prefix is None:
            return not device_id or device_id[0].lower() not in HEX
        return device_id is not None and device_id[: len(self.prefix)].lower() == self.prefix


def partitions_for(count: int) -> list[Partition]:
    """The disjoint partitions of a plan: the non-hex rest first (usually one short page), then the prefixes."""
    if count not in PARTITION_CHOICES:
        raise ValueError(f"partitions must be one of {', '.join(map(str, PARTITION_CHOICES))}, not {count}")
    if count == 1:
        return [Partition("")]
    digits = len(f"{count - 1:x}")
    return [Partition(None), *(Partition(f"{n:0{digits}x}") for n in range(count))]


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How the scan reads the directory: `partitions` (1, 16 or 256) with at most `concurrency` at once."""

    partitions: int = 16
    concurrency: int = 16

    def __post_init__(self) -> None:
        partitions_for(self.partitions)  # validates
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be 1..{MAX_CONCURRENCY}, not {self.concurrency}")

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None) -> ReadPlan:
        partitions = int(settings.number("SCAN_PARTITIONS", env, minimum=1, integer=True))
        if partitions not in PARTITION_CHOICES:
            raise ConfigError("SCAN_PARTITIONS", f"must be 1 (serial), 16 or 256, not {partitions}")
        concurrency = int(settings.number("SCAN_CONCURRENCY", env, minimum=1, integer=True))
        if concurrency > MAX_CONCURRENCY:
            raise ConfigError("SCAN_CONCURRENCY", f"must be at most {MAX_CONCURRENCY}, not {concurrency}")
        return cls(partitions, concurrency)

    def serial(self) -> ReadPlan:
        return replace(self, partitions=1)


@dataclass(frozen=True, slots=True)
class ReadReport:
    """How the fleet was read (the run record's `reading`)."""

    partitions: int
    concurrency: int
    counted_before: int
    counted_after: int | None  # None for a serial read (nothing to reconcile)
    devices_read: int  # by the read the scan acts on
    fallback: str | None  # why a partitioned read was discarded for a serial one
    throttled: int  # 429s heard by the page requests
    lowest_concurrency: int

    def record(self) -> dict[str, Any]:
        return asdict(self)


def completeness_problem(before: int, after: int, read: int, strays: int) -> str | None:
    """Why a partitioned read cannot be shown complete, or None when the counts account for it."""
    if strays:
        return f"{strays:,} devices came back in a partition their deviceId does not belong to"
    if min(before, after) <= read <= max(before, after):
        return None
    return (
        f"the partitions returned {read:,} devices but /devices/$count said {before:,} before and {after:,} after "
        "the read, more than the creations and deletions meanwhile can explain"
    )


class PartitionedReader:
    """Streams the fleet's pages; its attributes are the live figures the progress display shows."""

    def __init__(self, graph: GraphPort, plan: ReadPlan) -> None:
        self.graph, self.plan = graph, plan
        self.expected: int | None = None  # /devices/$count before the read
        self.partitions = self.in_flight = self.done = 0
        self.gate = AdaptiveLimit(plan.concurrency)
        self.report: ReadReport | None = None  # set once the last page has been taken

    async def pages(self, discard: Callable[[], None]) -> AsyncIterator[list[Device]]:
        """Every device once, page by page (in no fixed order), partitioned when the plan says so.

        When a partitioned read does not add up, `discard()` is called (the caller forgets every page it
        took) and the directory is read again serially. The pages of a pass are final only when it ends.
        """
        before = self.expected = await self.graph.count_devices()
        tally = [0, 0]  # devices, strays
        async with aclosing(self._pass(self.plan, tally)) as first:
            async for page in first:
                yield page
        if self.plan.partitions == 1:
            self.report = self._report(before, None, tally[0], None)
            return
        after = await self.graph.count_devices()
        problem = completeness_problem(before, after, tally[0], tally[1])
        if problem is not None:
            log.warning("scan: read again serially: %s", problem)
            discard()
            tally = [0, 0]
            async with aclosing(self._pass(self.plan.serial(), tally)) as again:
                async for page in again:
                    yield page
        self.report = self._report(before, after, tally[0], problem and f"read again serially: {problem}")

    async def _pass(self, plan: ReadPlan, tally: list[int]) -> AsyncGenerator[list[Device]]:
        """One pass over the plan's partitions, at most `concurrency` of them at once; the first error ends it."""
        pending = deque(partitions_for(plan.partitions))
        self.partitions, self.done = len(pending), 0
        queue: asyncio.Queue[list[Device] | BaseException | None] = asyncio.Queue(maxsize=2)
        prefetch = plan.partitions == 1  # a lone reader overlaps the next page with this one; partitions overlap each other
        workers = [
            asyncio.create_task(self._worker(pending, queue, tally, prefetch)) for _ in range(min(plan.concurrency, len(pending)))
        ]
        try:
            running = len(workers)
            while running:
                item = await queue.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self, pending: deque[Partition], queue: asyncio.Queue[Any], tally: list[int], prefetch: bool) -> None:
        """Read partitions until none is left; pages, then an error or None (done), go to the queue."""
        try:
            while pending:
                partition = pending.popleft()
                self.in_flight += 1
                try:
                    pages = self.graph.iter_devices(
                        filter=partition.filter, select=DEVICE_SELECT, gate=self.gate, prefetch=prefetch
                    )
                    async for page in pages:
                        tally[0] += len(page)
                        if partition.prefix != "":
                            tally[1] += sum(1 for d in page if not partition.covers(d.device_id))
                        await queue.put(page)
                finally:
                    self.in_flight -= 1
                self.done += 1
        except Exception as exc:  # handed to the reader, which raises it as the run's error
            await queue.put(exc)
            return
        await queue.put(None)

    def _report(self, before: int, after: int | None, read: int, fallback: str | None) -> ReadReport:
        return ReadReport(
            partitions=self.plan.partitions,
            concurrency=self.plan.concurrency,
            counted_before=before,
            counted_after=after,
            devices_read=read,
            fallback=fallback,
            throttled=self.gate.throttled,
            lowest_concurrency=self.gate.lowest,
        )
