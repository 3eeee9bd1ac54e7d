"""Rigs shared by the fuzz properties: one event loop and intake per property, one filled audit log per module."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.fuzz.probes import AuditRig, WebhookRig


@pytest.fixture
def webhook(tmp_path) -> Iterator[tuple[asyncio.Runner, WebhookRig]]:
    """One event loop and one intake for all the examples of a property."""
    with asyncio.Runner() as runner:
        rig = WebhookRig(tmp_path)
        yield runner, rig
        runner.run(rig.close())


@pytest.fixture(scope="module")
def audit_rig(tmp_path_factory: pytest.TempPathFactory) -> AuditRig:
    """An audit log with about 6 MB of large records and 200 small ones (filled once per module)."""
    return AuditRig(tmp_path_factory.mktemp("audit"))
