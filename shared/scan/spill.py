"""Disk spill that keeps the scan's memory flat whatever the fleet size.

The duplicate rule needs a fleet-wide view (the newest sign-in per displayName + trustType) and the
blast-radius breaker needs the fleet-wide count of destructive proposals before anything destructive is
queued, so decisions wait for the end of the stream. Rather than holding devices in RAM, each device's
compact row goes to one anonymous temporary file, hash-partitioned by its duplicate key: all objects
sharing a key land in the same partition. At the end the partitions are read back one at a time, so
memory holds one partition (about fleet / partitions rows) plus a small write buffer, never the fleet.
Bulky values (packed devices) go to a `BlobStore` beside it, so partition rows stay small and a blob is
read back only for the few rows that end up needing it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

import msgspec

Row = list[Any]  # as read back; `add` takes any sequence (tuples too)

DEFAULT_PARTITIONS = 1024
DEFAULT_FLUSH_ROWS = 65_536


class PartitionSpill:
    """Rows appended under a key, read back grouped by partition (rows of equal keys always together).

    A row is a list of msgpack-able values. Rows without a key are spread round-robin. Single use:
    `add` while streaming, then `partitions()` once; `close()` deletes the file (also on garbage
    collection, as it is an anonymous temporary file).
    """

    def __init__(
        self,
        partitions: int = DEFAULT_PARTITIONS,
        *,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        directory: str | None = None,
    ) -> None:
        if partitions < 1 or flush_rows < 1:
            raise ValueError("partitions and flush_rows must be at least 1")
        self._count = partitions
        self._flush_rows = flush_rows
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="janitor-scan-", dir=directory)  # noqa: SIM115 - closed by close()
        self._buffers: list[list[Sequence[Any]]] = [[] for _ in range(partitions)]
        self._chunks: list[list[tuple[int, int]]] = [[] for _ in range(partitions)]
        self._buffered = 0
        self._offset = 0
        self._round_robin = 0
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder().decode
        self.count = 0
        self.bytes_written = 0

    def add(self, key: str | None, row: Sequence[Any]) -> None:
        if key is None:
            self._round_robin = (self._round_robin + 1) % self._count
            index = self._round_robin
        else:
            index = hash(key) % self._count  # stable within the process, which is all the spill needs
        self._buffers[index].append(row)
        self.count += 1
        self._buffered += 1
        if self._buffered >= self._flush_rows:
            self._flush()

    def _flush(self) -> None:
        for index, buffer in enumerate(self._buffers):
            if not buffer:
                continue
            data = self._encode(buffer)
            self._file.write(data)
            self._chunks[index].append((self._offset, len(data)))
            self._offset += len(data)
            buffer.clear()
        self.bytes_written = self._offset
        self._buffered = 0

    def partitions(self) -> Iterator[list[Row]]:
        """Each non-empty partition's rows, in the order they were added, one partition at a time."""
        self._flush()
        self._file.flush()
        for chunks in self._chunks:
            if not chunks:
                continue
            rows: list[Row] = []
            for offset, length in chunks:
                self._file.seek(offset)
                rows.extend(self._decode(self._file.read(length)))
            yield rows

    def rows(self) -> Iterator[Row]:
        """Every row, one stored chunk at a time (memory: one chunk), partition by partition."""
        self._flush()
        self._file.flush()
        for chunks in self._chunks:
            for offset, length in chunks:
                self._file.seek(offset)
                yield from self._decode(self._file.read(length))

    def reset(self) -> None:
        """Forget every row (a read that was discarded), keeping the file."""
        self._file.seek(0)
        self._file.truncate()
        self._buffers = [[] for _ in range(self._count)]
        self._chunks = [[] for _ in range(self._count)]
        self._buffered = self._offset = self._round_robin = self.count = self.bytes_written = 0

    def close(self) -> None:
        self._file.close()
        self._buffers = [[] for _ in range(self._count)]

    def __enter__(self) -> PartitionSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobStore:
    """Append-only anonymous temporary file of byte strings, each read back by its (offset, length)."""

    _BUFFER_BYTES = 1 << 20

    def __init__(self, *, directory: str | None = None) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="janitor-blobs-", dir=directory)  # noqa: SIM115 - closed by close()
        self._buffer = bytearray()
        self._offset = 0  # where the next blob starts (the file holds everything before the buffer)

    def put(self, data: bytes) -> int:
        """Store `data`; returns its offset (its length is the caller's to keep)."""
        offset = self._offset
        self._buffer += data
        self._offset += len(data)
        if len(self._buffer) >= self._BUFFER_BYTES:
            self._drain()
        return offset

    def _drain(self) -> None:
        self._file.write(self._buffer)
        self._file.flush()
        self._buffer.clear()

    def get(self, offset: int, length: int) -> bytes:
        if self._buffer:
            self._drain()
        return os.pread(self._file.fileno(), length, offset)

    @property
    def size(self) -> int:
        return self._offset

    def reset(self) -> None:
        """Forget every blob (a read that was discarded), keeping the file."""
        self._file.seek(0)
        self._file.truncate()
        self._buffer.clear()
        self._offset = 0

    def close(self) -> None:
        self._file.close()
        self._buffer = bytearray()

    def __enter__(self) -> BlobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
