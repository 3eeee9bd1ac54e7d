"""Choosing and configuring the queue from settings: the right adapter, or one clear line naming the setting."""

from __future__ import annotations

import socket
import time

import pytest

from shared import bootstrap
from shared.errors import ConfigError, QueueUnavailable
from shared.ports import OutgoingMessage
from shared.queue import ServiceBusQueueReceiver, ServiceBusQueueSender, ServiceBusTarget, SqliteQueue, open_receiver, open_sender

SECRET = "c3VwZXItc2VjcmV0LWtleQ=="
NAMESPACE = "SERVICEBUS__fullyQualifiedNamespace"


async def test_default_backend_is_the_embedded_queue_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JANITOR_DATA_DIR", str(tmp_path / "data"))
    sender, receiver = open_sender(), open_receiver()
    try:
        assert isinstance(sender, SqliteQueue) and isinstance(receiver, SqliteQueue)
        assert sender.path == tmp_path / "data" / "queue.sqlite3"
        assert (sender.lock_seconds, sender.max_deliveries) == (60.0, 10)
        await sender.send([OutgoingMessage("m1", b"x")])
        [got] = await receiver.receive()  # separate connections, same file
        assert got.message_id == "m1"
    finally:
        await sender.close()
        await receiver.close()


async def test_embedded_queue_reads_lock_and_max_deliveries_from_settings(tmp_path):
    env = {"JANITOR_DATA_DIR": str(tmp_path), "QUEUE_LOCK_SECONDS": "2.5", "SERVICEBUS_MAX_DELIVERY_COUNT": "4"}
    queue = bootstrap.queue_receiver(env)
    try:
        assert isinstance(queue, SqliteQueue)
        assert (queue.lock_seconds, queue.max_deliveries) == (2.5, 4)
    finally:
        await queue.close()


@pytest.mark.parametrize(
    "env, setting",
    [
        ({"QUEUE_BACKEND": "kafka"}, "QUEUE_BACKEND"),
        ({"QUEUE_LOCK_SECONDS": "soon"}, "QUEUE_LOCK_SECONDS"),
        ({"QUEUE_LOCK_SECONDS": "0"}, "QUEUE_LOCK_SECONDS"),
        ({"SERVICEBUS_MAX_DELIVERY_COUNT": "0"}, "SERVICEBUS_MAX_DELIVERY_COUNT"),
        ({"QUEUE_BACKEND": "servicebus"}, NAMESPACE),
        ({"QUEUE_BACKEND": "servicebus", NAMESPACE: "not a host"}, NAMESPACE),
        ({"QUEUE_BACKEND": "servicebus", NAMESPACE: "https://"}, NAMESPACE),
        ({"QUEUE_BACKEND": "servicebus", NAMESPACE: "ns.servicebus.windows.net", "SERVICEBUS_QUEUE_NAME": "bad name!"},
         "SERVICEBUS_QUEUE_NAME"),
        ({"QUEUE_BACKEND": "servicebus", "SERVICEBUS_CONNECTION_STRING": f"nonsense;SharedAccessKey={SECRET}"},
         "SERVICEBUS_CONNECTION_STRING"),
        ({"QUEUE_BACKEND": "servicebus",
          "SERVICEBUS_CONNECTION_STRING": f"Endpoint=sb://prod.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={SECRET}"},
         "SERVICEBUS_CONNECTION_STRING"),
        ({"QUEUE_BACKEND": "servicebus", NAMESPACE: "ns.servicebus.windows.net",
          "SERVICEBUS_CONNECTION_STRING": f"Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=x;SharedAccessKey={SECRET}"},
         "SERVICEBUS_CONNECTION_STRING"),
    ],
)
@pytest.mark.parametrize("opener", [open_sender, open_receiver])
def test_bad_queue_settings_stop_with_one_line_naming_the_setting(tmp_path, env, setting, opener):
    with pytest.raises(ConfigError) as err:
        opener({"JANITOR_DATA_DIR": str(tmp_path), **env})
    message = str(err.value)
    assert err.value.setting == setting and message.startswith(f"{setting}:")
    assert "\n" not in message
    assert SECRET not in message  # a connection string's key is never echoed


def test_servicebus_from_namespace_uses_the_managed_identity():
    env = {"QUEUE_BACKEND": "servicebus", NAMESPACE: "sb://Contoso.servicebus.windows.net:443/", "AZURE_CLIENT_ID": "1111-2222"}
    sender, receiver = open_sender(env), open_receiver(env)
    assert isinstance(sender, ServiceBusQueueSender) and isinstance(receiver, ServiceBusQueueReceiver)
    target = sender.target
    assert target == ServiceBusTarget("remediation-commands", namespace="contoso.servicebus.windows.net", client_id="1111-2222")
    assert "namespace contoso.servicebus.windows.net" in target.where


async def test_namespace_client_is_built_with_a_user_assigned_identity():
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    client = ServiceBusTarget("q", namespace="contoso.servicebus.windows.net", client_id="1111").open_client(
        retry_total=1, retry_backoff_max=1
    )
    try:
        assert isinstance(client._credential, ManagedIdentityCredential)  # pyright: ignore[reportPrivateUsage]
        assert client.fully_qualified_namespace == "contoso.servicebus.windows.net"
    finally:
        await client.close()
    client = ServiceBusTarget("q", namespace="contoso.servicebus.windows.net").open_client(retry_total=1, retry_backoff_max=1)
    try:
        # developer logins work without AZURE_CLIENT_ID
        assert isinstance(client._credential, DefaultAzureCredential)  # pyright: ignore[reportPrivateUsage]
    finally:
        await client.close()
        await bootstrap.close_shared()


def test_target_repr_never_shows_the_connection_string():
    target = ServiceBusTarget("q", connection_string=f"Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=x;SharedAccessKey={SECRET}")
    assert SECRET not in repr(target) and SECRET not in target.where
    assert "127.0.0.1:1" in target.where


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unreachable_broker_is_queue_unavailable_within_the_retry_budget():
    conn = f"Endpoint=sb://127.0.0.1:{_closed_port()};SharedAccessKeyName=x;SharedAccessKey={SECRET};UseDevelopmentEmulator=true"
    sender = ServiceBusQueueSender(ServiceBusTarget("q", connection_string=conn), retry_total=1, retry_backoff_max=0.2)
    started = time.monotonic()
    with pytest.raises(QueueUnavailable) as err:
        await sender.send([OutgoingMessage("m1", b"x")])
    assert time.monotonic() - started < 15
    assert "sent 0 of 1" in str(err.value) and "retrying later is safe" in str(err.value)
    assert SECRET not in str(err.value)
    await sender.close()
