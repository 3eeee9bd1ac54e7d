"""The Azure credential every adapter uses for Entra-authenticated Azure services (Service Bus, Storage).

Graph has its own choice (GRAPH_AUTH, shared/graph/client.py); everything else signs in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared import settings


def azure_credential(env: Mapping[str, str] | None = None, *, client_id: str | None = None) -> Any:
    """The process's credential: one per client id, so every adapter shares one token cache (shared.bootstrap)."""
    from shared import bootstrap

    return bootstrap.shared_credential(client_id or settings.get("AZURE_CLIENT_ID", env))


def build_credential(client_id: str | None) -> Any:
    """User-assigned managed identity when a client id is given, else DefaultAzureCredential (developer logins too).

    An async credential (azure.identity.aio), imported only when first needed.
    """
    if client_id:
        from azure.identity.aio import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id)
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()
