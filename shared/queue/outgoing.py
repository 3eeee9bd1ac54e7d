"""Checks every adapter applies to outgoing messages, so both queues refuse the same mistakes up front."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from shared.ports import OutgoingMessage

#: Service Bus limits MessageId to 128 characters; the embedded queue keeps the same rule.
MAX_MESSAGE_ID = 128


def check_outgoing(messages: Sequence[object]) -> None:
    """Raise ValueError naming the message when one cannot be queued as given (a programming error).

    Typed `object` on purpose: the checks are for callers the type checker never sees (tests, decoded input).
    """
    for message in messages:
        if not isinstance(message, OutgoingMessage):
            raise ValueError(f"expected OutgoingMessage, got {type(message).__name__}")
        if not message.message_id or len(message.message_id) > MAX_MESSAGE_ID:
            raise ValueError(f"message_id must be 1..{MAX_MESSAGE_ID} characters, got {message.message_id!r}")
        if not _is_bytes(message.body):
            raise ValueError(f"message {message.message_id}: body must be bytes, not {type(message.body).__name__}")
        if message.scheduled_at is not None and message.scheduled_at.utcoffset() is None:
            raise ValueError(f"message {message.message_id}: scheduled_at must be timezone-aware (UTC), got a naive datetime")
        for key, value in message.properties.items():
            if not _is_property(key, value):
                raise ValueError(f"message {message.message_id}: property {key!r} must map a str to str, int or bool")


def _is_bytes(value: object) -> bool:
    return isinstance(value, bytes | bytearray)


def _is_property(key: object, value: object) -> bool:
    """What both queues can carry as an application property: a str mapped to str, int or bool."""
    return isinstance(key, str) and isinstance(value, str | int | bool)


def scheduled_utc(message: OutgoingMessage) -> datetime | None:
    """The message's scheduled time in UTC, or None when it is due now."""
    return message.scheduled_at.astimezone(UTC) if message.scheduled_at is not None else None
