"""Doctor fixtures: a small simulated tenant, and a credential that hands out a JWT with chosen roles."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import pytest
from azure.core.credentials import AccessToken

from simulator import SimulatorThread, Tenant, make_token


class FakeCredential:
    """An async azure-identity style credential whose token carries `roles` (unsigned, like the simulator wants)."""

    def __init__(self, roles: Iterable[str], *, app_id: str = "00000000-0000-0000-0000-00000000a11e", delegated: bool = False):
        self.token = make_token(roles, app_id=app_id, delegated=delegated)
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="session")
def doctor_simulator() -> Iterator[SimulatorThread]:
    with SimulatorThread(Tenant.generate(devices=40, seed=11)) as sim:
        yield sim
