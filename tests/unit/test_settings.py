import pytest

from shared import settings
from shared.errors import ConfigError


def test_url_rejects_non_url_and_names_setting():
    with pytest.raises(ConfigError) as err:
        settings.url("GRAPH_BASE_URL", {"GRAPH_BASE_URL": "graph.microsoft.com"})
    assert str(err.value).startswith("GRAPH_BASE_URL:")


def test_url_strips_trailing_slash():
    assert settings.url("GRAPH_BASE_URL", {"GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0/"}) == "http://127.0.0.1:9/v1.0"


def test_require_missing_names_setting():
    with pytest.raises(ConfigError, match="SERVICEBUS__fullyQualifiedNamespace"):
        settings.require("SERVICEBUS__fullyQualifiedNamespace", {})


@pytest.mark.parametrize("host,expected", [("127.0.0.1", True), ("localhost", True), ("[::1]", True),
                                            ("10.0.0.1", False), ("graph.microsoft.com", False), (None, False)])
def test_loopback(host, expected):
    assert settings.is_loopback_host(host) is expected


def test_flag_rejects_garbage():
    with pytest.raises(ConfigError, match="JANITOR_KILL_SWITCH"):
        settings.flag("JANITOR_KILL_SWITCH", {"JANITOR_KILL_SWITCH": "maybe"})
    assert settings.flag("JANITOR_KILL_SWITCH", {"JANITOR_KILL_SWITCH": "TRUE"}) is True
