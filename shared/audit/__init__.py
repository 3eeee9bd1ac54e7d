"""The audit log port's adapters and the one place that picks between them.

`open_audit_log(env)` reads AUDIT_BACKEND: `sqlite` (a file in JANITOR_DATA_DIR, local runs) or `table`
(Azure Table Storage: AUDIT_TABLE_ENDPOINT with the managed identity, or AUDIT_TABLE_CONNECTION_STRING for
Azurite). Nothing touches the store until the first call, so a bad setting never blocks start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared import settings
from shared.audit.sqlite import SqliteAuditLog
from shared.errors import ConfigError
from shared.identity import azure_credential

if TYPE_CHECKING:
    from shared.audit.table import TableAuditLog
    from shared.ports import AuditLog

__all__ = ["SqliteAuditLog", "TableAuditLog", "open_audit_log"]

SQLITE_FILE = "audit.sqlite3"


def open_audit_log(env: Mapping[str, str] | None = None) -> AuditLog:
    """The configured audit log; ConfigError naming the setting when one is missing or wrong."""
    backend = settings.choice("AUDIT_BACKEND", ("sqlite", "table"), env)
    if backend == "sqlite":
        return SqliteAuditLog(settings.data_dir(env) / SQLITE_FILE)
    from shared.audit.table import TableAuditLog

    table = settings.require("AUDIT_TABLE_NAME", env)
    _check_table_name(table)
    connection_string = settings.get("AUDIT_TABLE_CONNECTION_STRING", env)
    if connection_string:
        return TableAuditLog(connection_string, table)
    if settings.get("AUDIT_TABLE_ENDPOINT", env) is None:
        raise ConfigError(
            "AUDIT_TABLE_ENDPOINT",
            "is not set; AUDIT_BACKEND=table needs the Table endpoint (https://<account>.table.core.windows.net) "
            "or, for Azurite only, AUDIT_TABLE_CONNECTION_STRING",
        )
    endpoint = settings.url("AUDIT_TABLE_ENDPOINT", env)
    return TableAuditLog(endpoint, table, credential=azure_credential(env))


def _check_table_name(name: str) -> None:
    if not (3 <= len(name) <= 63 and name.isascii() and name.isalnum() and name[0].isalpha()):
        raise ConfigError("AUDIT_TABLE_NAME", f"must be 3-63 letters and digits starting with a letter, not {name!r}")


def __getattr__(name: str) -> Any:
    if name == "TableAuditLog":  # imported on demand: azure-data-tables is only needed with AUDIT_BACKEND=table
        from shared.audit.table import TableAuditLog

        return TableAuditLog
    raise AttributeError(name)
