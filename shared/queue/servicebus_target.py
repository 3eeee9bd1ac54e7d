"""Where the Service Bus queue is and how to authenticate, read and checked from settings; and the SDK client.

In Azure: `SERVICEBUS__fullyQualifiedNamespace` (the same setting the Functions trigger's identity-based
connection reads) with a managed identity (`AZURE_CLIENT_ID` picks a user-assigned one; otherwise
DefaultAzureCredential). Locally and in tests: `SERVICEBUS_CONNECTION_STRING`, accepted only for an emulator
or test broker (`UseDevelopmentEmulator=true` or a loopback host) so no shared key ends up in Azure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared import settings
from shared.errors import ConfigError, MessageLockLost, PermanentError, QueueUnavailable
from shared.identity import azure_credential

if TYPE_CHECKING:
    from azure.servicebus.aio import ServiceBusClient

NAMESPACE = "SERVICEBUS__fullyQualifiedNamespace"
CONNECTION_STRING = "SERVICEBUS_CONNECTION_STRING"
QUEUE_NAME = "SERVICEBUS_QUEUE_NAME"
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_QUEUE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,258}[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class ServiceBusTarget:
    """One queue and the way to reach it. `repr` never shows the connection string."""

    queue_name: str
    namespace: str | None = None  # fully qualified host, identity-based
    connection_string: str | None = None  # emulator / test broker only
    client_id: str | None = None  # user-assigned managed identity

    def __repr__(self) -> str:
        return f"ServiceBusTarget(queue_name={self.queue_name!r}, where={self.where!r})"

    @property
    def where(self) -> str:
        """Human-readable location for error messages (no secrets)."""
        if self.namespace:
            return f"queue {self.queue_name!r} in namespace {self.namespace}"
        return f"queue {self.queue_name!r} at the local broker {self._endpoint_host()}"

    def _endpoint_host(self) -> str:
        for part in (self.connection_string or "").split(";"):
            key, _, value = part.partition("=")
            if key.strip().lower() == "endpoint":
                return urlsplit(value.strip()).netloc or value.strip()
        return "?"

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None) -> ServiceBusTarget:
        """Read and validate the settings; every problem is a ConfigError naming the setting."""
        queue_name = settings.require(QUEUE_NAME, env).strip()
        if not _QUEUE.match(queue_name):
            raise ConfigError(
                QUEUE_NAME,
                f"{queue_name!r} is not a valid queue name "
                "(letters, digits, '.', '-', '_', '/'; start and end with a letter or digit)",
            )
        namespace = (settings.get(NAMESPACE, env) or "").strip()
        connection_string = (settings.get(CONNECTION_STRING, env) or "").strip()
        if namespace and connection_string:
            raise ConfigError(
                CONNECTION_STRING,
                f"set only one of {NAMESPACE} (Azure, managed identity) and {CONNECTION_STRING} (local test broker)",
            )
        if connection_string:
            check_connection_string(connection_string)
            return cls(queue_name, connection_string=connection_string)
        if not namespace:
            raise ConfigError(
                NAMESPACE,
                f"is not set: QUEUE_BACKEND=servicebus needs {NAMESPACE} (e.g. contoso.servicebus.windows.net) "
                f"or, for a local test broker, {CONNECTION_STRING}",
            )
        return cls(queue_name, namespace=normalise_namespace(namespace), client_id=settings.get("AZURE_CLIENT_ID", env))

    def open_client(self, *, retry_total: int, retry_backoff_max: float) -> ServiceBusClient:
        """The async SDK client. Its managed-identity credential is the process's (shared.bootstrap closes it)."""
        from azure.servicebus.aio import ServiceBusClient

        options: dict[str, Any] = {
            "retry_total": retry_total,
            "retry_backoff_factor": 0.5,
            "retry_backoff_max": retry_backoff_max,
        }
        if self.connection_string:
            return ServiceBusClient.from_connection_string(self.connection_string, **options)
        return ServiceBusClient(self.namespace or "", azure_credential(client_id=self.client_id), **options)


def normalise_namespace(value: str) -> str:
    """`sb://x.servicebus.windows.net/` or `x.servicebus.windows.net:443` -> `x.servicebus.windows.net`."""
    host = urlsplit(value).hostname if "://" in value else value.split("/")[0].rsplit(":", 1)[0]
    if not host or not _HOST.match(host):
        raise ConfigError(NAMESPACE, f"must be a host name such as contoso.servicebus.windows.net, not {value!r}")
    return host.lower()


def check_connection_string(value: str) -> None:
    """Parse it and refuse anything but an emulator or loopback broker. Messages never echo the key."""
    from azure.servicebus import parse_connection_string

    try:
        parsed = parse_connection_string(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            CONNECTION_STRING,
            f"is malformed ({exc}); expected Endpoint=sb://127.0.0.1:<port>;SharedAccessKeyName=..;SharedAccessKey=..;"
            "UseDevelopmentEmulator=true",
        ) from None
    emulator = any(part.strip().lower() == "usedevelopmentemulator=true" for part in value.split(";"))
    host = parsed.fully_qualified_namespace.rsplit(":", 1)[0] if parsed.fully_qualified_namespace else ""
    if not (emulator or settings.is_loopback_host(host)):
        raise ConfigError(
            CONNECTION_STRING,
            f"is only for a local emulator or test broker (UseDevelopmentEmulator=true or a loopback host), not {host!r}; "
            f"in Azure set {NAMESPACE} and grant the managed identity a Service Bus data role",
        )


def translate_error(exc: Exception, target: ServiceBusTarget, doing: str) -> Exception:
    """An SDK or identity error -> the project's error, with a sentence saying what to fix."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.servicebus import exceptions as sb

    where = target.where
    if isinstance(exc, sb.MessageLockLostError):
        return MessageLockLost(f"cannot {doing}: the message lock expired; the message will be delivered again")
    if isinstance(exc, sb.MessageAlreadySettled):
        return MessageLockLost(f"cannot {doing}: the message was already settled")
    if isinstance(exc, sb.MessagingEntityNotFoundError):
        return PermanentError(f"{where} does not exist: create it (infra/) or fix {QUEUE_NAME}")
    if isinstance(exc, sb.MessagingEntityDisabledError):
        return PermanentError(f"{where} is disabled: enable it in the Azure portal or infra/")
    if isinstance(exc, sb.ServiceBusAuthorizationError):
        role = "Azure Service Bus Data Sender" if "send" in doing else "Azure Service Bus Data Receiver"
        return PermanentError(f"not allowed to {doing} on {where}: grant the app's managed identity the '{role}' role")
    if isinstance(exc, sb.ServiceBusAuthenticationError | ClientAuthenticationError):
        return PermanentError(
            f"could not authenticate to {where} ({type(exc).__name__}): check AZURE_CLIENT_ID names the app's "
            "user-assigned identity, or sign in (az login) for local runs"
        )
    if isinstance(exc, sb.MessageSizeExceededError):
        return PermanentError(f"cannot {doing}: it is larger than {where} accepts ({exc})")
    return QueueUnavailable(f"could not {doing} on {where} after retries ({type(exc).__name__}: {exc}); retrying later is safe")
