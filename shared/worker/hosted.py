"""The worker as the Functions host runs it: one lazily built Worker per process, one message per call.

Settlement with the stable `func.ServiceBusMessage` binding is the host's: success completes the message,
an exception abandons it. The Python SDK-type binding that could dead-letter from code
(azurefunctions-extensions-bindings-servicebus) is still a beta that pulls in uamqp and grpcio-tools, so
the worker takes the bounded route instead: a message that must be dead-lettered (invalid, or failed for
good) gets its audit record once, then `DeadLetterRequested` is raised on every delivery; each
redelivery costs one audit lookup and no Graph call, and after the queue's MaxDeliveryCount Service Bus
moves it to the dead-letter sub-queue (reason MaxDeliveryCountExceeded; our reason is in the audit log,
keyed by the message id). Nothing is acted on in between.
"""

from __future__ import annotations

from collections.abc import Callable

from shared import bootstrap
from shared.errors import JanitorError
from shared.worker.handler import Handled, Worker


class DeadLetterRequested(JanitorError):
    """Raised so the host abandons the message until Service Bus dead-letters it (see the module doc)."""


_factory: Callable[[], Worker] | None = None


def set_worker_factory(factory: Callable[[], Worker] | None) -> None:
    """Tests (and tools) replace how the process's Worker is built; None restores settings-based wiring."""
    global _factory
    _factory = factory


def _settings_worker() -> Worker:
    from shared.worker import open_worker

    worker = open_worker()
    worker.digest = False  # one invocation per message: nothing would ever flush a digest
    return worker


def process_worker() -> Worker:
    """The Worker of this process and event loop, built on first use (never at import time; shared.bootstrap)."""
    factory = _factory or _settings_worker
    return bootstrap.shared(("worker", factory), factory)


#: Seconds an invocation waits, message locked (the host renews it), for the audit store to come back before
#: it gives the message back: each give-back spends one of the queue's MaxDeliveryCount deliveries.
AUDIT_WAIT_SECONDS = 60.0


async def handle_delivery(body: bytes, *, message_id: str, delivery_count: int) -> Handled:
    """Handle one Service Bus delivery; raises to have it retried or, eventually, dead-lettered."""
    from shared.worker.drain import handle_waiting_for_audit

    worker = process_worker()
    handled = await handle_waiting_for_audit(
        worker, body, message_id=message_id, delivery_count=delivery_count, audit_wait=AUDIT_WAIT_SECONDS
    )
    if handled.settle == "dead_letter":
        raise DeadLetterRequested(
            f"message {message_id}: {handled.dead_letter_reason}: {handled.reason} "
            "(recorded in the audit log; Service Bus dead-letters it after MaxDeliveryCount)"
        )
    return handled
