"""Service Bus queue trigger: hands each RemediationCommand to the worker core (shared.worker)."""

from __future__ import annotations

import azure.functions as func

from shared.worker.hosted import handle_delivery

bp = func.Blueprint()


@bp.function_name("remediation_worker")
@bp.service_bus_queue_trigger(arg_name="message", queue_name="%SERVICEBUS_QUEUE_NAME%", connection="SERVICEBUS")
async def remediation_worker(message: func.ServiceBusMessage) -> None:
    """Success completes the message; an exception abandons it (retried, then dead-lettered by Service Bus)."""
    await handle_delivery(
        message.get_body(),
        message_id=message.message_id or "",
        delivery_count=message.delivery_count or 1,
    )
