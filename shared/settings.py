"""Settings come from the environment (Functions app settings). One table declares them all.

The table feeds `local.settings.sample.json`, the README's settings table, `janitor doctor` and the test
that checks the Bicep sets every setting the code reads. A bad value stops with a one-line error naming
the setting (ConfigError).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shared.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: str | None
    help: str
    azure: bool = True  # set by infra/ in Azure (False: local-only or optional)


SETTINGS: tuple[Setting, ...] = (
    Setting("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0", "Graph endpoint; point at the simulator locally.", azure=False),
    Setting("GRAPH_AUTH", "managed_identity", "managed_identity | default (DefaultAzureCredential) | anonymous (loopback only)."),
    Setting("AZURE_CLIENT_ID", None, "Client id of the user-assigned managed identity used for Graph."),
    Setting("GRAPH_WRITE_BUDGET", "3000", "Graph writes (PATCH/DELETE) this app may send per window, per process."),
    Setting("GRAPH_WRITE_WINDOW_SECONDS", "150", "Length of the Graph write-budget window, in seconds."),
    Setting("GRAPH_MAX_ATTEMPTS", "6", "Attempts per Graph request on 429/503/504 before giving up."),
    Setting("GRAPH_MAX_RETRY_SECONDS", "300", "Longest time one Graph request may spend retrying, in seconds."),
    Setting("QUEUE_BACKEND", "sqlite", "servicebus in Azure; sqlite for local runs."),
    Setting("SERVICEBUS__fullyQualifiedNamespace", None, "Service Bus namespace host (identity-based connection)."),
    Setting("SERVICEBUS_CONNECTION_STRING", None, "Connection string (local/test broker only; never in Azure).", azure=False),
    Setting("SERVICEBUS_QUEUE_NAME", "remediation-commands", "Queue the scan and webhook send to and the worker reads."),
    Setting("QUEUE_LOCK_SECONDS", "60", "Peek-lock seconds of the embedded queue (Service Bus: set in infra/).", azure=False),
    Setting("AUDIT_BACKEND", "sqlite", "table in Azure; sqlite for local runs."),
    Setting("AUDIT_TABLE_ENDPOINT", None, "Table service endpoint, e.g. https://<account>.table.core.windows.net."),
    Setting("AUDIT_TABLE_CONNECTION_STRING", None, "Connection string (Azurite/local only; never in Azure).", azure=False),
    Setting("AUDIT_TABLE_NAME", "janitoraudit", "Audit table name."),
    Setting("JANITOR_DATA_DIR", ".janitor", "Folder for the embedded SQLite queue and audit log.", azure=False),
    Setting("JANITOR_POLICY", None, "Path of the policy YAML; safe defaults when unset."),
    Setting("JANITOR_KILL_SWITCH", "false", "true stops every remediation (recorded as blocked)."),
    Setting("SCAN_SCHEDULE", "0 0 2 * * *", "NCRONTAB (6 fields) of the nightly scan."),
    Setting("SCAN_PARTITIONS", "16",
            "Partitions of /devices the scan reads (by deviceId prefix): 1 (serial), 16, or 256 for the largest tenants.",
            azure=False),
    Setting("SCAN_CONCURRENCY", "16",
            "Partitions the scan reads at once (1-32); it lowers this on its own while Graph throttles.", azure=False),
    Setting("TICKET_CALLBACK_SCHEDULE", "0 */5 * * * *",
            "NCRONTAB of the sweep that delivers finished ticket results to callbacks."),
    Setting("WEBHOOK_SECRET", None, "HMAC secret for X-Janitor-Signature (a Key Vault reference in Azure)."),
    Setting(
        "TICKET_ID_SECRET",
        None,
        "Key of ticket request ids (HMAC; 32+ characters); unset: derived from WEBHOOK_SECRET. A change re-keys new ids.",
        azure=False,
    ),
    Setting(
        "KEEP_LINK_SECRET",
        None,
        "HMAC key of the keep links in owner notices (32+ characters; a Key Vault reference in Azure). Unset: no link.",
    ),
    Setting(
        "PUBLIC_BASE_URL",
        None,
        "Public https origin of the Function App, e.g. https://<app>.azurewebsites.net: keep links point here. Unset: no link.",
    ),
    Setting("CALLBACK_ALLOWLIST", "", "Comma-separated hosts ticket callbacks may be POSTed to."),
    Setting(
        "TICKET_JIRA_FIELDS",
        None,
        "JSON: ticket field -> path in a Jira issue webhook (defaults in docs/tickets.md).",
        azure=False,
    ),
    Setting("TICKET_SERVICENOW_FIELDS", None, "JSON: ticket field -> path in a ServiceNow outbound REST body.", azure=False),
    Setting("AZURE_TENANT_ID", None, "Directory (tenant) id; diagnosis flags devices that report another TenantId."),
    Setting("MAIL_SENDER", None, "UPN or id of the mailbox notifications are sent from (Mail.Send)."),
    Setting("BUDGET_TABLE_NAME", "janitorbudget", "Table (in the audit storage account) holding the destructive-action budget."),
    Setting("SERVICEBUS_MAX_DELIVERY_COUNT", "10",
            "The queue's MaxDeliveryCount: the worker records a final failure on the last delivery."),
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", None, "Turns on OpenTelemetry export to Application Insights."),
)

_BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


def get(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The setting's value from the environment, or its default. Unknown names are a programming error."""
    setting = _BY_NAME[name]
    value = (os.environ if env is None else env).get(name)
    return value if value not in (None, "") else setting.default


def require(name: str, env: Mapping[str, str] | None = None) -> str:
    """Like get(), but a missing value is a ConfigError naming the setting."""
    value = get(name, env)
    if value is None:
        raise ConfigError(name, f"is not set; {_BY_NAME[name].help}")
    return value


def flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    """A boolean setting: true/1/yes/on or false/0/no/off."""
    value = (get(name, env) or "false").strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false, not {value!r}")


def choice(name: str, options: tuple[str, ...], env: Mapping[str, str] | None = None) -> str:
    """A setting restricted to a few values."""
    value = (require(name, env)).strip().lower()
    if value not in options:
        raise ConfigError(name, f"must be one of {', '.join(options)}, not {value!r}")
    return value


def url(name: str, env: Mapping[str, str] | None = None) -> str:
    """An absolute http(s) URL."""
    value = require(name, env).strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"must be an absolute http(s) URL such as https://graph.microsoft.com/v1.0, not {value!r}")
    return value.rstrip("/")


def number(name: str, env: Mapping[str, str] | None = None, *, minimum: float = 0.0, integer: bool = False) -> float:
    """A numeric setting, at least `minimum` (a whole number when `integer`)."""
    value = require(name, env).strip()
    try:
        parsed = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(name, f"must be {kind}, not {value!r}") from None
    if not parsed >= minimum:
        raise ConfigError(name, f"must be at least {minimum:g}, not {value!r}")
    return parsed


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (the only hosts anonymous Graph auth may reach)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Folder of the embedded stores, created on first use."""
    path = Path(require("JANITOR_DATA_DIR", env)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
