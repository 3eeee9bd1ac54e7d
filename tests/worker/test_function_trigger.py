"""The Service Bus trigger: completes handled commands; invalid ones are recorded once and never complete."""

from __future__ import annotations

import pytest
from azure.functions.servicebus import ServiceBusMessage

from functions.remediation_worker import remediation_worker
from shared.commands import encode
from shared.worker.hosted import DeadLetterRequested, set_worker_factory
from shared.worker.records import invalid_command_id
from tests.worker.conftest import decisions_of, records_of
from tests.worker.fakes import FakeGraph, command, device


def _message(body: bytes, message_id: str, delivery_count: int = 1) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=body, message_id=message_id, delivery_count=delivery_count, application_properties={}, user_properties={}
    )


@pytest.fixture
def hosted(make_worker):
    graph = FakeGraph(device("f1"))
    set_worker_factory(lambda: make_worker(graph))
    yield graph
    set_worker_factory(None)


def _user_function():
    return remediation_worker.build().get_user_function()


async def test_valid_command_completes_with_a_decision(hosted, audit):
    cmd = command(hosted.devices["f1"])
    await _user_function()(_message(encode(cmd), cmd.command_id))
    [decision] = await decisions_of(audit, cmd.command_id)
    assert decision.entry.decision == "acted" and hosted.devices["f1"].account_enabled is False


async def test_invalid_message_is_recorded_once_and_never_completed(hosted, audit):
    for delivery in (1, 2, 3):
        with pytest.raises(DeadLetterRequested, match="InvalidCommand"):
            await _user_function()(_message(b"[]", "bad-1", delivery))
    [record] = await records_of(audit, invalid_command_id("bad-1"))
    assert record.entry.decision == "failed" and record.entry.data["delivery_count"] == 1
    assert hosted.writes == []


def test_binding_reads_queue_name_from_settings():
    import azure.functions as func

    from functions.remediation_worker import bp

    app = func.FunctionApp()
    app.register_functions(bp)
    [fn] = [f for f in app.get_functions() if f.get_function_name() == "remediation_worker"]
    binding = fn.get_bindings()[0]
    assert binding.type == "serviceBusTrigger" and binding.queue_name == "%SERVICEBUS_QUEUE_NAME%"
    assert binding.connection == "SERVICEBUS"
