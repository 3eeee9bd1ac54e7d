"""Group commit: appends that arrive while a write is in flight go out together in the next transaction.

A durable append costs one flush to disk (SQLite, ~10 ms on a virtual disk) or one round trip (Table
Storage). Concurrent workers in one process would otherwise queue behind each other, or, on Table
Storage, race for the same head ETag. Each caller still returns only once its own record is committed,
and a failed transaction fails exactly the appends it carried (nothing is reported written that is not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from shared.ports import AuditEntry, AuditRecord

#: Writes a non-empty prefix of the entries in one transaction and returns the records of that prefix.
Commit = Callable[[Sequence[AuditEntry]], Awaitable[list[AuditRecord]]]


class GroupCommit:
    """Coalesces concurrent `submit` calls into as few `commit` transactions as possible."""

    def __init__(self, commit: Commit, max_batch: int) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._pending: list[tuple[AuditEntry, asyncio.Future[AuditRecord]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, entry: AuditEntry) -> AuditRecord:
        future: asyncio.Future[AuditRecord] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())  # not tied to one caller's cancellation
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            while batch:
                try:
                    written = await self._commit([entry for entry, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        self._fail_pending(exc)
                        raise
                    break
                for (_, future), record in zip(batch, written, strict=False):
                    if not future.done():
                        future.set_result(record)
                batch = batch[len(written) :]

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, []
        for _, future in pending:
            if not future.done():
                future.set_exception(exc)
