"""The process's clients: built once per event loop and settings, in one place, closed together."""

from __future__ import annotations

import pytest

from shared import bootstrap
from shared.identity import azure_credential


class Client:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_one_client_per_key_until_closed():
    first = bootstrap.shared("k", Client)
    assert bootstrap.shared("k", Client) is first and bootstrap.shared("other", Client) is not first
    await bootstrap.close_shared()
    assert first.closed and bootstrap.shared("k", Client) is not first
    await bootstrap.close_shared()


async def test_a_changed_setting_builds_a_fresh_client(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AUDIT_BACKEND", "sqlite")
    first = bootstrap.shared("k", Client)
    monkeypatch.setenv("AUDIT_BACKEND", "table")
    assert bootstrap.shared("k", Client) is not first
    await bootstrap.close_shared()


async def test_every_adapter_gets_the_one_credential_of_its_client_id():
    """One credential (one token cache) per process, not one per adapter or per request."""
    a = azure_credential({"AZURE_CLIENT_ID": "00000000-0000-0000-0000-0000000000aa"})
    assert azure_credential({}, client_id="00000000-0000-0000-0000-0000000000aa") is a
    assert azure_credential({}, client_id="00000000-0000-0000-0000-0000000000bb") is not a
    await bootstrap.close_shared()
