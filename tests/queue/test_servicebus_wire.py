"""The Service Bus adapters over the wire: the real azure-servicebus SDK against the loopback AMQP broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import MessageLockLost
from shared.ports import OutgoingMessage
from shared.queue import ServiceBusQueueReceiver, ServiceBusQueueSender, ServiceBusTarget, open_receiver, open_sender

QUEUE = "remediation-commands"


def target(broker, queue: str = QUEUE) -> ServiceBusTarget:
    return ServiceBusTarget(queue, connection_string=broker.connection_string)


def command(i: int, size: int = 200) -> OutgoingMessage:
    body = (f'{{"command_id":"c{i}","pad":"' + "x" * size + '"}').encode()
    return OutgoingMessage(f"cmd-{i:03d}", body, subject="disable", properties={"run_id": "run-7", "attempt": i, "dry": False})


async def test_batch_send_delivers_ids_bodies_and_properties_intact(amqp_broker):
    messages = [command(i) for i in range(40)]
    async with ServiceBusQueueSender(target(amqp_broker), keep_alive_seconds=None, max_batch_bytes=4096) as sender:
        assert await sender.send(messages) == 40
        batches = sender.batches_sent
    queue = amqp_broker.queue(QUEUE)
    assert batches > 1, "40 x ~260 bytes cannot fit one 4 KB batch"
    assert queue.transfers == [n for n in queue.transfers if n > 1] and sum(queue.transfers) == 40
    assert len(queue.transfers) == batches  # one AMQP transfer per batch, not per message
    stored = {m.message_id: m for m in queue.messages}
    assert list(stored) == [m.message_id for m in messages]  # order kept
    for m in messages:
        got = stored[m.message_id]
        assert got.body == m.body
        assert got.subject == "disable"
        assert got.application_properties == {"run_id": "run-7", "attempt": m.properties["attempt"], "dry": False}
    [token] = amqp_broker.cbs_tokens
    assert token["operation"] == "put-token" and str(token["name"]).endswith(f"/{QUEUE}")


async def test_default_batch_size_sends_many_messages_in_one_transfer(amqp_broker):
    async with ServiceBusQueueSender(target(amqp_broker), keep_alive_seconds=None) as sender:
        assert await sender.send([command(i) for i in range(100)]) == 100
        assert sender.batches_sent == 1
    assert amqp_broker.queue(QUEUE).transfers == [100]


async def test_duplicates_are_dropped_by_message_id(amqp_broker):
    async with ServiceBusQueueSender(target(amqp_broker), keep_alive_seconds=None) as sender:
        assert await sender.send([command(1), command(2)]) == 2
        assert await sender.send([command(2), command(3)]) == 2  # a re-send after a crash, say
    queue = amqp_broker.queue(QUEUE)
    assert [m.message_id for m in queue.messages] == ["cmd-001", "cmd-002", "cmd-003"]
    assert queue.duplicates_dropped == 1


async def test_scheduled_enqueue_time_is_carried(amqp_broker):
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    async with ServiceBusQueueSender(target(amqp_broker), keep_alive_seconds=None) as sender:
        await sender.send([OutgoingMessage("later", b"{}", scheduled_at=due), OutgoingMessage("now", b"{}")])
    later, now = amqp_broker.queue(QUEUE).messages
    assert later.message_id == "later"
    assert datetime.fromtimestamp(later.annotations["x-opt-scheduled-enqueue-time"] / 1000, UTC) == due
    assert later.visible_at == due.timestamp()  # the broker holds it back until then
    assert "x-opt-scheduled-enqueue-time" not in now.annotations


async def test_message_too_big_for_any_batch_is_a_clear_error(amqp_broker):
    huge = OutgoingMessage("huge", b"x" * 5000)
    async with ServiceBusQueueSender(target(amqp_broker), keep_alive_seconds=None, max_batch_bytes=4096) as sender:
        with pytest.raises(Exception, match="huge") as err:
            await sender.send([command(1), huge])
    assert "larger than" in str(err.value)


async def test_receive_complete_abandon_dead_letter(amqp_broker):
    async with ServiceBusQueueSender(target(amqp_broker), keep_alive_seconds=None) as sender:
        await sender.send([command(i) for i in range(3)])
    async with ServiceBusQueueReceiver(target(amqp_broker), keep_alive_seconds=None) as receiver:
        got = await receiver.receive(max_messages=3, wait_seconds=2)
        assert [m.message_id for m in got] == ["cmd-000", "cmd-001", "cmd-002"]
        assert all(m.delivery_count == 1 for m in got)
        first = got[0]
        assert first.body == command(0).body and first.subject == "disable"
        assert first.properties == {"run_id": "run-7", "attempt": 0, "dry": False}
        assert first.enqueued_at is not None
        await receiver.complete(got[0])
        await receiver.abandon(got[1])
        await receiver.dead_letter(got[2], "InvalidCommand", "unknown command version 9")
        [again] = await receiver.receive(wait_seconds=2)
        assert again.message_id == "cmd-001" and again.delivery_count == 2
        await receiver.complete(again)
        with pytest.raises(MessageLockLost):
            await receiver.complete(again)  # already settled
    queue = amqp_broker.queue(QUEUE)
    assert queue.messages == []
    assert [m.message_id for m in queue.completed] == ["cmd-000", "cmd-001"]
    [dead] = queue.dead_letters
    assert (dead.message.message_id, dead.reason, dead.description) == ("cmd-002", "InvalidCommand", "unknown command version 9")


async def test_settling_after_the_lock_expired_is_message_lock_lost(amqp_broker_factory):
    broker = amqp_broker_factory(lock_seconds=0.3)
    broker.enqueue(QUEUE, b"slow work", message_id="m1")
    async with ServiceBusQueueReceiver(target(broker), keep_alive_seconds=None) as receiver:
        [got] = await receiver.receive(wait_seconds=2)
        [again] = await receiver.receive(wait_seconds=2)  # the lock ran out and the message came back
        assert again.message_id == "m1" and again.delivery_count == 2
        with pytest.raises(MessageLockLost):
            await receiver.complete(got)
        await receiver.complete(again)
    assert [m.message_id for m in broker.queue(QUEUE).completed] == ["m1"]


async def test_open_sender_and_receiver_use_servicebus_from_settings(servicebus_env, amqp_broker):
    sender, receiver = open_sender(), open_receiver()
    assert isinstance(sender, ServiceBusQueueSender) and isinstance(receiver, ServiceBusQueueReceiver)
    try:
        assert await sender.send([command(1)]) == 1
    finally:
        await sender.close()
        await receiver.close()  # never opened: closing is a no-op
    assert [m.message_id for m in amqp_broker.queue(QUEUE).messages] == ["cmd-001"]
