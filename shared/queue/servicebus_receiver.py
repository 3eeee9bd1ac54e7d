"""QueueReceiver over Azure Service Bus, peek-lock (tooling and tests; in Azure the Functions host receives).

Prefetch is off, so only the messages handed to the caller are locked. The port's `delivery_count` counts
this delivery (1 on the first), as the Functions host reports it; the Python SDK exposes the AMQP header
value, which is one less.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.errors import MessageLockLost
from shared.ports import ReceivedMessage
from shared.queue.servicebus_link import ServiceBusLink
from shared.queue.servicebus_target import ServiceBusTarget, translate_error

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusReceivedMessage

#: The SDK needs a positive wait; a "don't wait" receive still gives the link this long to deliver.
MIN_WAIT_SECONDS = 0.5


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def to_received_message(message: ServiceBusReceivedMessage) -> ReceivedMessage:
    """An SDK ServiceBusReceivedMessage -> the port's ReceivedMessage."""
    body = message.body
    return ReceivedMessage(
        message_id=str(message.message_id),
        body=body if isinstance(body, bytes) else b"".join(body),
        delivery_count=(message.delivery_count or 0) + 1,
        lock_token=str(message.lock_token),
        subject=message.subject,
        enqueued_at=message.enqueued_time_utc,
        properties={str(_text(k)): _text(v) for k, v in (message.application_properties or {}).items()},
    )


class ServiceBusQueueReceiver(ServiceBusLink):
    """Receives from one queue; keeps each delivery's SDK message until it is settled."""

    def __init__(self, target: ServiceBusTarget, **link_options: Any) -> None:
        """`link_options` are ServiceBusLink's (retry_total, retry_backoff_max, keep_alive_seconds)."""
        super().__init__(target, **link_options)
        self._unsettled: dict[str, Any] = {}

    def _make_handler(self, client: Any) -> Any:
        return client.get_queue_receiver(self.target.queue_name, prefetch_count=0, **self._handler_options)

    async def receive(self, max_messages: int = 1, wait_seconds: float = 0.0) -> list[ReceivedMessage]:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.servicebus.exceptions import ServiceBusError

        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        try:
            receiver = await self._open()
            batch = await receiver.receive_messages(
                max_message_count=max_messages, max_wait_time=max(wait_seconds, MIN_WAIT_SECONDS)
            )
        except (ServiceBusError, ClientAuthenticationError, OSError) as exc:
            await self._reset()
            raise translate_error(exc, self.target, "receive") from exc
        received = [to_received_message(m) for m in batch]
        self._unsettled.update((r.lock_token, m) for r, m in zip(received, batch, strict=True))
        return received

    async def complete(self, message: ReceivedMessage) -> None:
        await self._settle(message, "complete")

    async def abandon(self, message: ReceivedMessage) -> None:
        await self._settle(message, "abandon")

    async def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        if not reason:
            raise ValueError("dead_letter needs a reason")
        await self._settle(message, "dead-letter", reason, description)

    async def _settle(
        self, message: ReceivedMessage, action: str, reason: str | None = None, description: str | None = None
    ) -> None:
        """Settle over the receive link; a lost lock is MessageLockLost, other failures may be retried."""
        from azure.servicebus.exceptions import ServiceBusError

        sdk_message = self._unsettled.get(message.lock_token)
        if sdk_message is None or self._handler is None:
            raise MessageLockLost(
                f"cannot {action} message {message.message_id!r}: it was not received by this receiver or is already settled"
            )
        try:
            if action == "complete":
                await self._handler.complete_message(sdk_message)
            elif action == "abandon":
                await self._handler.abandon_message(sdk_message)
            else:
                await self._handler.dead_letter_message(sdk_message, reason=reason, error_description=description)
        except ServiceBusError as exc:
            error = translate_error(exc, self.target, f"{action} message {message.message_id!r}")
            if isinstance(error, MessageLockLost):
                self._unsettled.pop(message.lock_token, None)
            raise error from exc
        self._unsettled.pop(message.lock_token, None)

    async def close(self) -> None:
        self._unsettled.clear()
        await super().close()
