"""The slice of azure-data-tables' async TableClient the app uses (audit log, budget, command leases), typed.

The SDK leaves `**kwargs` unannotated on every TableClient method and TableEntity is a bare `dict`
subclass, so a type checker sees Unknown wherever they are used. `Table` and `Row` describe what the app
relies on; `open_table` builds the SDK client, and is the one place its type meets this description
(checked structurally there, no cast).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.data.tables import EntityMetadata, UpdateMode

#: An entity group transaction step: ("create" | "update" | ..., entity[, options such as mode and etag]).
Operation = tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], Mapping[str, Any]]


class Row(Protocol):
    """An entity as read (the SDK's TableEntity): its properties, and the service's metadata (ETag)."""

    @property
    def metadata(self) -> EntityMetadata: ...

    def __getitem__(self, key: str, /) -> Any: ...

    def get(self, key: str, default: Any = None, /) -> Any: ...


class Table(Protocol):
    """One table: the TableClient methods the app calls, with the keywords it passes."""

    @property
    def table_name(self) -> str: ...

    def create_table(self) -> Awaitable[object]: ...

    def get_entity(self, partition_key: str, row_key: str) -> Awaitable[Row]: ...

    def query_entities(
        self, query_filter: str, *, results_per_page: int | None = None, parameters: dict[str, Any] | None = None
    ) -> AsyncIterator[Row]: ...

    def create_entity(self, entity: Mapping[str, Any]) -> Awaitable[Mapping[str, Any]]: ...

    def update_entity(
        self,
        entity: Mapping[str, Any],
        mode: UpdateMode = ...,
        *,
        etag: str | None = None,
        match_condition: MatchConditions | None = None,
    ) -> Awaitable[Mapping[str, Any]]: ...

    def delete_entity(
        self, partition_key: str, row_key: str, *, etag: str | None = None, match_condition: MatchConditions | None = None
    ) -> Awaitable[None]: ...

    def submit_transaction(self, operations: Iterable[Operation]) -> Awaitable[list[Mapping[str, Any]]]: ...

    def close(self) -> Awaitable[None]: ...


def open_table(account: str, table_name: str, *, credential: Any = None, **options: Any) -> Table:
    """`account` is a Table endpoint (https://<account>.table.core.windows.net, used with `credential`) or a
    connection string (Azurite and local runs). `options` go to the TableClient (e.g. retry_total)."""
    from azure.data.tables.aio import TableClient

    if account.lower().startswith(("http://", "https://")):
        return TableClient(account, table_name=table_name, credential=credential, **options)
    return TableClient.from_connection_string(account, table_name=table_name, **options)
