"""The one owner of the Graph retry budget (tenacity); the SDK's own RetryHandler is switched off.

Retries 429/503/504 (whole responses and inner $batch responses) and transport errors, waiting for
Retry-After when Graph sends it and exponential backoff with jitter otherwise, bounded both in attempts
and in total time. When the budget runs out the last error is raised again, of its own class (GraphThrottled,
or GraphUnavailable for a 503/504 or an unreachable endpoint), saying how long it tried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import tenacity

from shared import settings, telemetry
from shared.errors import GraphError
from shared.graph.failures import TransientResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one Graph request. Defaults suit a nightly job; tests pass small ones.

    `sleep` waits between attempts and `clock` (monotonic seconds) measures the time bound; tests pass a
    virtual pair, so a Retry-After is checked as the wait asked for, not as time spent.
    """

    max_attempts: int = 6
    max_seconds: float = 300.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_seconds < 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError(f"invalid retry policy {self!r}: attempts must be >= 1 and times >= 0")

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None) -> RetryPolicy:
        return cls(
            max_attempts=int(settings.number("GRAPH_MAX_ATTEMPTS", env, minimum=1, integer=True)),
            max_seconds=settings.number("GRAPH_MAX_RETRY_SECONDS", env, minimum=0),
        )

    def wait_seconds(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After (plus a little jitter so parallel callers do not return in step), else backoff."""
        if retry_after is not None:
            return retry_after + random.uniform(0, min(1.0, 0.1 * retry_after))
        backoff = self.backoff_initial * 2 ** (attempt - 1)
        return min(self.backoff_max, backoff + random.uniform(0, self.backoff_initial))


def _wait(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, TransientResponse) else None
        return policy.wait_seconds(state.attempt_number, retry_after)

    return wait


def _before_retry(what: str) -> Callable[[tenacity.RetryCallState], None]:
    def note(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientResponse) and exc.error.status == 429:
            telemetry.count("graph_throttled", endpoint=what)
        log.warning("Graph retry %d in %.1f s: %s", state.attempt_number, state.upcoming_sleep, exc)

    return note


async def with_retries[T](policy: RetryPolicy, attempt: Callable[[], Coroutine[Any, Any, T]], what: str) -> T:
    """Run `attempt` until it stops raising TransientResponse or the policy's budget is spent.

    `what` ("GET /devices") names the request in the give-up message.
    """
    started = policy.clock()

    def stop(state: tenacity.RetryCallState) -> bool:
        """tenacity's stop_after_attempt | stop_before_delay, the latter on the policy's clock."""
        out_of_time = policy.clock() - started + state.upcoming_sleep >= policy.max_seconds
        return state.attempt_number >= policy.max_attempts or out_of_time

    retrying = tenacity.AsyncRetrying(
        sleep=policy.sleep,
        stop=stop,
        wait=_wait(policy),
        retry=tenacity.retry_if_exception_type(TransientResponse),
        before_sleep=_before_retry(what),
        reraise=True,
    )
    try:
        async for state in retrying:  # not `retrying(attempt)`: its retry state, a reference cycle, would keep the
            with state:  # response (a page: ~1.4 MB) alive until the garbage collector runs
                return await attempt()
    except TransientResponse as exc:
        attempts = int(retrying.statistics.get("attempt_number", 1))
        raise give_up(exc, what, attempts, policy.clock() - started) from exc
    raise AssertionError("tenacity stopped without an outcome")  # unreachable: reraise=True raises the last error


def give_up(exc: TransientResponse, what: str, attempts: int, seconds: float) -> GraphError:
    """The error raised once the retry budget is spent: what failed, how long we tried, what to change."""
    last = exc.error
    message = (
        f"{what} still failing after {attempts} attempt{'s' if attempts != 1 else ''} over {seconds:.1f} s "
        f"(GRAPH_MAX_ATTEMPTS / GRAPH_MAX_RETRY_SECONDS bound the retries); last error: {last.message.rstrip('.')}. "
        "It is safe to run again later."
    )
    return type(last)(message, status=last.status, code=last.code, request_id=last.request_id)
