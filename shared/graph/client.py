"""The one place that builds the msgraph-sdk client: credential, auth provider, HTTP client, middleware.

`GRAPH_AUTH=managed_identity` (ManagedIdentityCredential, AZURE_CLIENT_ID when set) or `default`
(DefaultAzureCredential) in Azure; `anonymous` sends no token and is refused unless GRAPH_BASE_URL is a
loopback host (the simulator). The SDK's RetryHandler is switched off: tenacity owns the retry budget
(`shared.graph.retry`), so attempts never multiply. Tokens are only ever attached for the configured host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared import settings
from shared.errors import ConfigError

if TYPE_CHECKING:
    import httpx
    from kiota_abstractions.authentication import AuthenticationProvider
    from msgraph.graph_service_client import GraphServiceClient

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
AUTH_MODES = ("managed_identity", "default", "anonymous")
#: Per-request timeouts in seconds (a 999-device page is ~1.5 MB; Graph can be slow at night).
CONNECT_TIMEOUT = 30.0
REQUEST_TIMEOUT = 100.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The Graph root the gateway talks to, e.g. https://graph.microsoft.com/v1.0 (no trailing slash)."""

    base_url: str

    @property
    def scheme(self) -> str:
        return urlsplit(self.base_url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def path(self) -> str:
        return urlsplit(self.base_url).path.rstrip("/")

    @property
    def loopback(self) -> bool:
        return settings.is_loopback_host(self.host)

    @property
    def scope(self) -> str:
        """The token scope: Graph's `.default` for its own host (or a loopback simulator), else the host's."""
        if self.loopback or self.host == "graph.microsoft.com":
            return GRAPH_SCOPE
        return f"https://{self.host}/.default"

    def relative(self, url: str) -> str:
        """The path of an absolute Graph URL relative to the API root, without the query (for messages)."""
        path = urlsplit(url).path
        return path[len(self.path) :] if path.startswith(self.path) else path

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower() == self.origin


def endpoint_from(base_url: str, setting: str = "GRAPH_BASE_URL") -> Endpoint:
    """Validate a Graph base URL: absolute http(s), and https unless the host is loopback."""
    url = settings.url(setting, {setting: base_url})
    endpoint = Endpoint(url)
    if endpoint.scheme != "https" and not endpoint.loopback:
        raise ConfigError(setting, f"must use https unless the host is loopback (the simulator), not {url!r}")
    return endpoint


def credential_from_settings(env: Mapping[str, str] | None = None) -> Any | None:
    """The async credential GRAPH_AUTH asks for; None for anonymous (checked later against the host)."""
    mode = settings.choice("GRAPH_AUTH", AUTH_MODES, env)
    client_id = settings.get("AZURE_CLIENT_ID", env)
    if mode == "anonymous":
        return None
    if mode == "managed_identity":
        from azure.identity.aio import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()


def auth_provider(endpoint: Endpoint, auth: Any | None) -> AuthenticationProvider:
    """A kiota auth provider from a credential, an existing provider, or None (anonymous, loopback only)."""
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider, AuthenticationProvider

    if auth is None or isinstance(auth, AnonymousAuthenticationProvider):
        if not endpoint.loopback:
            raise ConfigError(
                "GRAPH_AUTH",
                f"anonymous sends no token and is allowed only when GRAPH_BASE_URL is a loopback host (the simulator), "
                f"not {endpoint.host!r}; use managed_identity or default",
            )
        return auth or AnonymousAuthenticationProvider()
    if isinstance(auth, AuthenticationProvider):
        return auth
    if not hasattr(auth, "get_token"):
        raise TypeError(f"expected an Azure credential or a kiota AuthenticationProvider, not {type(auth).__name__}")
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider

    # allowed_hosts: the token is attached only for the configured Graph host, never for a foreign nextLink.
    return AzureIdentityAuthenticationProvider(auth, scopes=[endpoint.scope], allowed_hosts=[endpoint.host])


def http_client(endpoint: Endpoint) -> httpx.AsyncClient:
    """httpx with the Graph middleware chain, minus retries (tenacity owns them)."""
    # (msgraph-core is annotated inline but ships no py.typed marker, hence the two ignores.)
    import httpx
    from kiota_abstractions.request_option import RequestOption
    from kiota_http.middleware.options import RetryHandlerOption, UrlReplaceHandlerOption
    from msgraph._version import VERSION
    from msgraph_core import APIVersion, GraphClientFactory  # pyright: ignore[reportMissingTypeStubs]
    from msgraph_core.middleware.options import GraphTelemetryHandlerOption  # pyright: ignore[reportMissingTypeStubs]

    options: dict[str, RequestOption] = {
        RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, should_retry=False),
        UrlReplaceHandlerOption.get_key(): UrlReplaceHandlerOption(
            enabled=True, replacement_pairs={"/users/me-token-to-replace": "/me"}
        ),
        GraphTelemetryHandlerOption.get_key(): GraphTelemetryHandlerOption(api_version=APIVersion.v1, sdk_version=VERSION),
    }
    client = httpx.AsyncClient(
        base_url=endpoint.base_url,
        timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT),
        http2=endpoint.scheme == "https",
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
    )
    return GraphClientFactory.create_with_default_middleware(client=client, options=options)


def build_client(endpoint: Endpoint, auth: Any | None, http: httpx.AsyncClient | None = None) -> GraphServiceClient:
    """The msgraph-sdk client for this endpoint (its request adapter carries auth and middleware)."""
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_service_client import GraphServiceClient

    adapter = GraphRequestAdapter(auth_provider(endpoint, auth), client=http or http_client(endpoint))
    adapter.base_url = endpoint.base_url
    return GraphServiceClient(request_adapter=adapter)
