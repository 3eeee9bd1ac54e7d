"""What both audit adapters do the same way on top of their own `query` and `verify_walk`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from shared.audit.chain import ChainWalker
from shared.audit.codec import encode_continuation
from shared.ports import AuditPage, AuditQuery, AuditRecord, ChainBreak


def page_of(records: list[AuditRecord], limit: int) -> AuditPage:
    """A page from up to `limit + 1` fetched records: the extra one only says there is more."""
    if len(records) > limit:
        last = records[limit - 1]
        return AuditPage(records[:limit], encode_continuation(last.partition, last.seq))
    return AuditPage(records, None)


class PagedAuditLog:
    """Mixin: `iter_records` and `verify` from the adapter's `query` and `verify_walk`."""

    PAGE_SIZE = 1_000

    async def query(self, query: AuditQuery, *, limit: int = 500, continuation: str | None = None) -> AuditPage:
        raise NotImplementedError

    async def verify_walk(self, since: datetime | None = None, until: datetime | None = None) -> ChainWalker:
        raise NotImplementedError

    async def iter_records(self, query: AuditQuery) -> AsyncIterator[AuditRecord]:
        """Every matching record, oldest first, page by page."""
        token: str | None = None
        while True:
            page = await self.query(query, limit=self.PAGE_SIZE, continuation=token)
            for record in page.records:
                yield record
            if page.continuation is None:
                return
            token = page.continuation

    async def verify(self, since: datetime | None = None, until: datetime | None = None) -> list[ChainBreak]:
        """Walk the chains of the days in [since, until); an empty list means intact."""
        return (await self.verify_walk(since, until)).finish()
