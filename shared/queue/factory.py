"""Pick the queue adapter from settings: `QUEUE_BACKEND=sqlite` (local) or `servicebus` (Azure).

The embedded queue lives at `<JANITOR_DATA_DIR>/queue.sqlite3`; its lock duration is `QUEUE_LOCK_SECONDS` and
its max delivery count `SERVICEBUS_MAX_DELIVERY_COUNT`, the same count the worker reads, so both queues give
up on a message at the same delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from shared import settings
from shared.ports import QueueReceiver, QueueSender
from shared.queue.sqlite_queue import SqliteQueue

BACKENDS = ("sqlite", "servicebus")
SQLITE_FILE = "queue.sqlite3"


def backend(env: Mapping[str, str] | None = None) -> str:
    return settings.choice("QUEUE_BACKEND", BACKENDS, env)


#: Same as the Service Bus queue's duplicate-detection window (infra/): a scan re-run the same day queues nothing.
DUPLICATE_WINDOW = timedelta(days=1)


def sqlite_path(env: Mapping[str, str] | None = None) -> Path:
    return settings.data_dir(env) / SQLITE_FILE


def open_sqlite(env: Mapping[str, str] | None = None) -> SqliteQueue:
    """The embedded queue configured from settings (also what `janitor` inspection commands open)."""
    return SqliteQueue(
        sqlite_path(env),
        lock_seconds=settings.number("QUEUE_LOCK_SECONDS", env, minimum=0.001),
        max_deliveries=int(settings.number("SERVICEBUS_MAX_DELIVERY_COUNT", env, minimum=1, integer=True)),
        duplicate_window=DUPLICATE_WINDOW,
    )


def open_sender(env: Mapping[str, str] | None = None) -> QueueSender:
    """The configured sender. Bad or missing settings raise ConfigError naming the setting."""
    if backend(env) == "sqlite":
        return open_sqlite(env)
    from shared.queue.servicebus_sender import ServiceBusQueueSender
    from shared.queue.servicebus_target import ServiceBusTarget

    return ServiceBusQueueSender(ServiceBusTarget.from_settings(env))


def open_receiver(env: Mapping[str, str] | None = None) -> QueueReceiver:
    """The configured peek-lock receiver (in Azure the Functions host receives; this serves tooling)."""
    if backend(env) == "sqlite":
        return open_sqlite(env)
    from shared.queue.servicebus_receiver import ServiceBusQueueReceiver
    from shared.queue.servicebus_target import ServiceBusTarget

    return ServiceBusQueueReceiver(ServiceBusTarget.from_settings(env))
