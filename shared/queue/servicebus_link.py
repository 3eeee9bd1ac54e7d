"""What the Service Bus sender and receiver share: open the client and one SDK handler lazily, close all."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Self

from shared.queue.servicebus_target import ServiceBusTarget

log = logging.getLogger(__name__)


class ServiceBusLink:
    """Base for the adapters. Nothing connects until first use; `close()` (or `async with`) releases it.

    `retry_total` / `retry_backoff_max` bound the SDK's own retries of transient failures.
    `keep_alive_seconds` pings an idle connection (None: no pings; closing is then quicker, handy in tests).
    """

    def __init__(
        self,
        target: ServiceBusTarget,
        *,
        retry_total: int = 3,
        retry_backoff_max: float = 8.0,
        keep_alive_seconds: int | None = 30,
    ) -> None:
        self.target = target
        self._client_options: dict[str, Any] = {"retry_total": retry_total, "retry_backoff_max": retry_backoff_max}
        self._handler_options: dict[str, Any] = {"keep_alive": keep_alive_seconds}  # for get_queue_sender/receiver
        self._client: Any = None
        self._handler: Any = None
        self._opening = asyncio.Lock()

    def _make_handler(self, client: Any) -> Any:
        """The SDK sender or receiver for `self.target.queue_name`, given `self._handler_options`."""
        raise NotImplementedError

    async def _open(self) -> Any:
        async with self._opening:
            if self._handler is None:
                client = self.target.open_client(**self._client_options)
                try:
                    handler = self._make_handler(client)
                    await handler.__aenter__()  # opens the link with the SDK's own retries and timeouts
                except BaseException:
                    await client.close()
                    raise
                self._client, self._handler = client, handler
            return self._handler

    async def _reset(self) -> None:
        """Drop a connection that failed; the next call opens a fresh one."""
        try:
            await self.close()
        except Exception:  # closing a broken connection must not hide the error being reported
            log.debug("closing a failed Service Bus link raised", exc_info=True)

    async def close(self) -> None:
        handler, client = self._handler, self._client
        self._handler = self._client = None
        await _close_all(handler, client)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _close_all(*closeables: Any) -> None:
    """Close handler, then client, skipping the ones never created (the credential is the process's)."""
    for closeable in closeables:
        if closeable is not None:
            await closeable.close()
