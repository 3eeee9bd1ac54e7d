"""Fault injection: server errors, added latency and 429 storms, changeable while the simulator runs."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Faults:
    """Mutable knobs; the running simulator reads them on every request (`sim.faults.storm_429 = 0.5`).

    Rates are fractions of requests (inner `$batch` requests count one by one; latency is added once per
    HTTP request, after it was served and charged, uniformly `latency_jitter_ms` either side of `latency_ms`,
    drawn from its own generator seeded with `seed`). `throttle_next` / `fail_next_5xx` hit the next N
    matching requests exactly, for deterministic tests. `match` is a regular expression on "METHOD /path"
    (e.g. "^PATCH /devices/") limiting which requests the faults hit. Retry-After values are whole seconds, as Graph sends them.
    """

    error_rate_5xx: float = 0.0
    error_status: int = 503
    error_retry_after: int | None = None
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    storm_429: float = 0.0
    storm_retry_after: int = 1
    throttle_next: int = 0
    fail_next_5xx: int = 0
    match: str | None = None
    batch_order: Literal["shuffled", "request"] = "shuffled"  # Graph may answer $batch requests in any order
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)
    _seeded: int | None = field(default=None, init=False, repr=False)
    _latency_rng: random.Random = field(default_factory=random.Random, init=False, repr=False)
    _latency_seeded: int | None = field(default=None, init=False, repr=False)

    def reset(self) -> None:
        """Back to no faults."""
        self.error_rate_5xx = self.storm_429 = self.latency_ms = self.latency_jitter_ms = 0.0
        self.throttle_next = self.fail_next_5xx = 0
        self.match = None

    def decide(self, operation: str) -> Literal["429", "5xx"] | None:
        """What (if anything) to inject for one request, "METHOD /path"."""
        if self.match and not re.search(self.match, operation):
            return None
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return "429"
        if self.fail_next_5xx > 0:
            self.fail_next_5xx -= 1
            return "5xx"
        if not (self.storm_429 or self.error_rate_5xx):
            return None
        if self._seeded != self.seed:
            self._rng.seed(self.seed)
            self._seeded = self.seed
        roll = self._rng.random()
        if roll < self.storm_429:
            return "429"
        if roll < self.storm_429 + self.error_rate_5xx:
            return "5xx"
        return None

    def applies(self, operation: str) -> bool:
        return not self.match or re.search(self.match, operation) is not None

    def latency_s(self, operation: str) -> float:
        """Seconds to hold this request's answer back (0 when no latency applies to it)."""
        if self.latency_ms <= 0 or not self.applies(operation):
            return 0.0
        jitter = 0.0
        if self.latency_jitter_ms > 0:
            if self._latency_seeded != self.seed:
                self._latency_rng.seed(self.seed)
                self._latency_seeded = self.seed
            jitter = self._latency_rng.uniform(-self.latency_jitter_ms, self.latency_jitter_ms)
        return max(0.0, self.latency_ms + jitter) / 1000

    def shuffle(self, items: list) -> None:
        if self.batch_order == "shuffled":
            self._rng.shuffle(items)
