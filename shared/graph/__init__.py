"""Microsoft Graph: the gateway the core talks to, and the table of permissions it needs.

`build_gateway(env)` reads the GRAPH_* settings; `GraphGateway(base_url, auth)` builds one directly (tests,
the simulator). Importing this package is cheap: msgraph-sdk is loaded only when a gateway is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.graph.gateway import GraphGateway

__all__ = ["GraphGateway", "build_gateway"]


def build_gateway(env: Mapping[str, str] | None = None) -> GraphGateway:
    """The gateway the settings describe. Bad settings raise ConfigError naming the setting; no I/O here.

    GRAPH_BASE_URL (an http(s) URL; https unless loopback), GRAPH_AUTH (managed_identity | default |
    anonymous, the last for a loopback host only), AZURE_CLIENT_ID, GRAPH_WRITE_BUDGET,
    GRAPH_WRITE_WINDOW_SECONDS, GRAPH_MAX_ATTEMPTS, GRAPH_MAX_RETRY_SECONDS.
    """
    from shared import settings
    from shared.graph.client import credential_from_settings, endpoint_from
    from shared.graph.gateway import GraphGateway
    from shared.graph.pacer import WritePacer
    from shared.graph.retry import RetryPolicy

    endpoint = endpoint_from(settings.url("GRAPH_BASE_URL", env))
    retry = RetryPolicy.from_settings(env)
    pacer = WritePacer.from_settings(env)
    credential = credential_from_settings(env)  # None for anonymous: the gateway checks the host is loopback
    return GraphGateway(endpoint.base_url, credential, retry=retry, pacer=pacer, owns_auth=credential is not None)


def __getattr__(name: str) -> Any:
    if name == "GraphGateway":
        from shared.graph.gateway import GraphGateway

        return GraphGateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
