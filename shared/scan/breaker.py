"""The blast-radius breaker: a pure check of a run's destructive proposals against the policy's limits.

A scan proposing more destructive actions (disable, delete) than `limits.max_destructive_per_run`, or
more than `limits.max_destructive_fraction` of the devices it scanned, queues none of them: one bad
threshold or one broken Graph response must not become a mass deletion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.policy import LimitsPolicy


@dataclass(frozen=True, slots=True)
class BreakerVerdict:
    """Whether the run halts, and the numbers that decided it (recorded in the run's audit record)."""

    halted: bool
    reason: str | None
    destructive: int
    scanned: int
    max_per_run: int
    max_fraction: float
    allowed: int  # the tighter of the two limits for this run

    def record(self) -> dict[str, object]:
        return {
            "halted": self.halted,
            "reason": self.reason,
            "destructive_proposed": self.destructive,
            "devices_scanned": self.scanned,
            "max_destructive_per_run": self.max_per_run,
            "max_destructive_fraction": self.max_fraction,
            "allowed": self.allowed,
        }


def check_breaker(destructive: int, scanned: int, limits: LimitsPolicy) -> BreakerVerdict:
    """Halt when `destructive` exceeds either limit (at most floor(fraction x scanned) may pass)."""
    by_fraction = math.floor(limits.max_destructive_fraction * scanned + 1e-9)
    allowed = min(limits.max_destructive_per_run, by_fraction)
    over: list[str] = []
    if destructive > limits.max_destructive_per_run:
        over.append(f"limits.max_destructive_per_run {limits.max_destructive_per_run:,}")
    if destructive > by_fraction:
        fraction = limits.max_destructive_fraction
        over.append(f"limits.max_destructive_fraction {fraction:g} of {scanned:,} devices scanned ({by_fraction:,})")
    reason = None
    if over:
        reason = f"breaker: {destructive:,} destructive actions proposed, more than " + " and ".join(over)
    return BreakerVerdict(bool(over), reason, destructive, scanned, limits.max_destructive_per_run,
                          limits.max_destructive_fraction, allowed)
