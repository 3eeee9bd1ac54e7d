"""Bad Graph settings stop with a ConfigError naming the setting; good ones build a gateway without I/O."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.graph import GraphGateway, build_gateway


@pytest.mark.parametrize(
    ("env", "setting", "words"),
    [
        ({"GRAPH_BASE_URL": "not a url"}, "GRAPH_BASE_URL", "absolute http(s) URL"),
        ({"GRAPH_BASE_URL": "ftp://graph.example/v1.0"}, "GRAPH_BASE_URL", "absolute http(s) URL"),
        ({"GRAPH_BASE_URL": "http://graph.example.com/v1.0"}, "GRAPH_BASE_URL", "https"),
        ({"GRAPH_AUTH": "anonymous"}, "GRAPH_AUTH", "loopback"),
        ({"GRAPH_AUTH": "anonymous", "GRAPH_BASE_URL": "https://graph.example.com/v1.0"}, "GRAPH_AUTH", "loopback"),
        ({"GRAPH_AUTH": "password"}, "GRAPH_AUTH", "managed_identity"),
        ({"GRAPH_WRITE_BUDGET": "lots"}, "GRAPH_WRITE_BUDGET", "whole number"),
        ({"GRAPH_WRITE_BUDGET": "0"}, "GRAPH_WRITE_BUDGET", "at least 1"),
        ({"GRAPH_WRITE_WINDOW_SECONDS": "-5"}, "GRAPH_WRITE_WINDOW_SECONDS", "at least"),
        ({"GRAPH_MAX_ATTEMPTS": "2.5"}, "GRAPH_MAX_ATTEMPTS", "whole number"),
        ({"GRAPH_MAX_RETRY_SECONDS": "soon"}, "GRAPH_MAX_RETRY_SECONDS", "number"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], setting: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_gateway(env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert words in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_anonymous_is_allowed_for_loopback(host: str) -> None:
    gateway = build_gateway({"GRAPH_AUTH": "anonymous", "GRAPH_BASE_URL": f"http://{host}:8080/v1.0/"})
    assert isinstance(gateway, GraphGateway)
    assert gateway.base_url == f"http://{host}:8080/v1.0"
    await gateway.close()


async def test_managed_identity_sends_tokens_only_to_the_graph_host() -> None:
    from azure.identity.aio import ManagedIdentityCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider

    gateway = build_gateway({"AZURE_CLIENT_ID": "00000000-0000-0000-0000-00000000abcd", "GRAPH_WRITE_BUDGET": "1200"})
    provider = gateway.client.request_adapter._authentication_provider
    assert isinstance(provider, AzureIdentityAuthenticationProvider)
    token_provider = provider.access_token_provider
    assert isinstance(token_provider._credentials, ManagedIdentityCredential)
    assert token_provider._scopes == ["https://graph.microsoft.com/.default"]
    validator = token_provider.get_allowed_hosts_validator()
    assert validator.is_url_host_valid("https://graph.microsoft.com/v1.0/devices")
    assert not validator.is_url_host_valid("https://attacker.example/v1.0/devices")
    assert gateway.pacer.budget == 1200
    await gateway.close()


async def test_default_credential_is_used_when_asked() -> None:
    from azure.identity.aio import DefaultAzureCredential

    gateway = build_gateway({"GRAPH_AUTH": "default"})
    provider = gateway.client.request_adapter._authentication_provider
    assert isinstance(provider.access_token_provider._credentials, DefaultAzureCredential)
    await gateway.close()


def test_direct_construction_refuses_anonymous_to_a_remote_host() -> None:
    with pytest.raises(ConfigError, match="GRAPH_AUTH"):
        GraphGateway("https://graph.microsoft.com/v1.0")


def test_gateway_offers_every_graph_port_method_with_its_parameters() -> None:
    import inspect

    from shared.ports import GraphPort

    members = [name for name, value in vars(GraphPort).items() if callable(value) and not name.startswith("_")]
    assert "iter_devices" in members and "close" in members
    for name in members:
        port = inspect.signature(getattr(GraphPort, name))
        ours = inspect.signature(getattr(GraphGateway, name))
        for parameter in port.parameters.values():
            assert parameter.name in ours.parameters, f"GraphGateway.{name} lacks {parameter.name}"
            assert ours.parameters[parameter.name].kind == parameter.kind, f"GraphGateway.{name}({parameter.name})"
        assert inspect.iscoroutinefunction(getattr(GraphGateway, name)) == inspect.iscoroutinefunction(getattr(GraphPort, name))
