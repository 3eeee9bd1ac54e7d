"""Fixtures for the Graph gateway tests: a gateway over HTTP to the simulator, and app tokens with chosen roles."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from shared.graph import GraphGateway
from shared.graph.pacer import WritePacer
from shared.graph.retry import RetryPolicy
from simulator import RunningSimulator, make_token
from tests.support.manual_time import VirtualClock

#: Retries that finish in test time (Retry-After from the simulator is still honoured in full).
FAST_RETRY = RetryPolicy(max_attempts=4, max_seconds=20, backoff_initial=0.05, backoff_max=0.2)


def virtual_retry(policy: RetryPolicy = FAST_RETRY, **changes: Any) -> tuple[RetryPolicy, VirtualClock]:
    """`policy` (with `changes`) waiting on a virtual clock: no wall-clock time passes, `clock.slept` has the waits."""
    clock = VirtualClock()
    return replace(policy, sleep=clock.sleep, clock=clock, **changes), clock


class RoleToken:
    """An async Azure credential whose token carries exactly these app roles (the simulator enforces them)."""

    def __init__(self, roles: Iterable[str]) -> None:
        self.token = make_token(roles)
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None


@pytest.fixture
async def make_gateway() -> AsyncIterator[Callable[..., GraphGateway]]:
    """Factory: `make_gateway(sim, auth=None, retry=FAST_RETRY, pacer=None)`; every gateway is closed afterwards."""
    made: list[GraphGateway] = []

    def make(sim: RunningSimulator, auth: Any = None, *, retry: RetryPolicy = FAST_RETRY,
             pacer: WritePacer | None = None) -> GraphGateway:
        gateway = GraphGateway(sim.base_url, auth, retry=retry, pacer=pacer or WritePacer(100_000, 150))
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()


@pytest.fixture
async def gateway(simulator: RunningSimulator, make_gateway: Callable[..., GraphGateway]) -> GraphGateway:
    """A gateway (anonymous, fast retries, no practical write limit) over the default small simulator."""
    return make_gateway(simulator)


async def drain(pages: Any) -> list[Any]:
    """Every item of an async iterator of pages."""
    return [item async for page in pages for item in page]


Starter = Callable[..., Awaitable[RunningSimulator]]
