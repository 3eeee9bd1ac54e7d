"""QueueSender over Azure Service Bus (azure-servicebus, async).

Messages go out in batches (`create_message_batch`, a new batch when one is full), each with its MessageId
(the queue's duplicate detection drops re-sends), subject, application properties and, for scheduled ones,
`scheduled_enqueue_time_utc`. The SDK retries transient failures a bounded number of times; what is left is a
QueueUnavailable saying how far the send got. Re-sending the whole list is then safe: duplicates drop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from shared.ports import OutgoingMessage
from shared.queue.outgoing import check_outgoing, scheduled_utc
from shared.queue.servicebus_link import ServiceBusLink
from shared.queue.servicebus_target import ServiceBusTarget, translate_error

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

log = logging.getLogger(__name__)


def to_servicebus_message(message: OutgoingMessage) -> ServiceBusMessage:
    from azure.servicebus import ServiceBusMessage

    # The SDK's parameter is an (invariant) dict of its PrimitiveTypes, so it is built with exactly that type.
    properties: dict[str | bytes, int | float | bytes | bool | str | UUID] = dict(message.properties.items())

    return ServiceBusMessage(
        bytes(message.body),
        message_id=message.message_id,
        subject=message.subject,
        application_properties=properties or None,
        scheduled_enqueue_time_utc=scheduled_utc(message),
    )


class ServiceBusQueueSender(ServiceBusLink):
    """Sends to one queue. `max_batch_bytes` caps a batch below the service's limit; `send_timeout` bounds one batch.

    `link_options` are ServiceBusLink's (retry_total, retry_backoff_max, keep_alive_seconds).
    """

    def __init__(
        self,
        target: ServiceBusTarget,
        *,
        max_batch_bytes: int | None = None,
        send_timeout: float = 60.0,
        **link_options: Any,
    ) -> None:
        super().__init__(target, **link_options)
        self._max_batch_bytes = max_batch_bytes
        self._send_timeout = send_timeout
        self.batches_sent = 0  # batches handed to the service by this sender (tests and metrics)

    def _make_handler(self, client: Any) -> Any:
        return client.get_queue_sender(self.target.queue_name, **self._handler_options)

    async def send(self, messages: Sequence[OutgoingMessage]) -> int:
        """Send in as few batches as fit; returns how many messages were handed to the queue."""
        from azure.core.exceptions import ClientAuthenticationError
        from azure.servicebus.exceptions import MessageSizeExceededError, ServiceBusError

        check_outgoing(messages)
        if not messages:
            return 0
        sent = pending = 0
        try:
            sender = await self._open()
            batch = await sender.create_message_batch(max_size_in_bytes=self._max_batch_bytes)
            for message in messages:
                sb_message = to_servicebus_message(message)
                try:
                    batch.add_message(sb_message)
                except MessageSizeExceededError:
                    if pending == 0:
                        raise  # too big even for an empty batch
                    await sender.send_messages(batch, timeout=self._send_timeout)
                    self.batches_sent += 1
                    sent, pending = sent + pending, 0
                    batch = await sender.create_message_batch(max_size_in_bytes=self._max_batch_bytes)
                    batch.add_message(sb_message)
                pending += 1
            await sender.send_messages(batch, timeout=self._send_timeout)
            self.batches_sent += 1
            sent, pending = sent + pending, 0
        except MessageSizeExceededError as exc:
            doing = f"send message {messages[sent + pending].message_id!r} (sent {sent} before it)"
            raise translate_error(exc, self.target, doing) from exc
        except (ServiceBusError, ClientAuthenticationError, OSError) as exc:
            await self._reset()
            raise translate_error(exc, self.target, f"send (sent {sent} of {len(messages)})") from exc
        log.debug("sent %d message(s) in %d batch(es) to %s", sent, self.batches_sent, self.target.where)
        return sent
