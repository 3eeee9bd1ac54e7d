"""The queue port's adapters: Service Bus in Azure, an embedded SQLite queue for local runs.

`open_sender(env)` / `open_receiver(env)` choose by `QUEUE_BACKEND`. The Service Bus classes import the
Azure SDK only when first used, so local runs and cold starts do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.queue.factory import open_receiver, open_sender, open_sqlite
from shared.queue.sqlite_queue import MAX_DELIVERY_COUNT_EXCEEDED, SqliteQueue

if TYPE_CHECKING:
    from shared.queue.servicebus_receiver import ServiceBusQueueReceiver
    from shared.queue.servicebus_sender import ServiceBusQueueSender
    from shared.queue.servicebus_target import ServiceBusTarget

__all__ = [
    "MAX_DELIVERY_COUNT_EXCEEDED",
    "ServiceBusQueueReceiver",
    "ServiceBusQueueSender",
    "ServiceBusTarget",
    "SqliteQueue",
    "open_receiver",
    "open_sender",
    "open_sqlite",
]

_LAZY = {
    "ServiceBusQueueSender": "shared.queue.servicebus_sender",
    "ServiceBusQueueReceiver": "shared.queue.servicebus_receiver",
    "ServiceBusTarget": "shared.queue.servicebus_target",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shared.queue' has no attribute {name!r}")
