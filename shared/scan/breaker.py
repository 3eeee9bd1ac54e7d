"""The blast-radius breaker: a pure check of a run's device writes against the policy's limits.

A scan proposing more device writes (tag, clear_tag, disable, delete; the `limits.max_destructive_*` keys
keep their names) than `limits.max_destructive_per_run`, or more than `limits.max_destructive_fraction` of
the devices it scanned, queues none of them in enforce mode: one bad threshold or one broken Graph
response must not become a mass deletion. In report mode nothing is written anyway, so the run goes on as a
preview and the verdict says by how much enforce mode would halt and which limit to raise.
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

    @property
    def over_by(self) -> int:
        """How many proposals past the tighter limit (0 when within both)."""
        return max(self.destructive - self.allowed, 0)

    def advice(self) -> str:
        """Which limits to raise (and to what) so that a run with these figures would not halt."""
        wants: list[str] = []
        if self.destructive > self.max_per_run:
            wants.append(f"limits.max_destructive_per_run to at least {self.destructive:,}")
        needed = self.destructive / self.scanned if self.scanned else 1.0
        if self.destructive > self.allowed and needed > self.max_fraction:
            fraction = math.ceil(needed * 10_000) / 10_000
            wants.append(f"limits.max_destructive_fraction to at least {fraction:g}")
        return "raise " + " and ".join(wants) if wants else "no limit needs raising"

    def preview(self) -> str:
        """The report-mode sentence: enforce mode would halt, by how much, and what to raise."""
        return (
            f"enforce mode would halt this run: {self.destructive:,} device writes proposed, "
            f"{self.over_by:,} over the {self.allowed:,} allowed; {self.advice()} (or work the backlog down first)"
        )

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
        reason = f"breaker: {destructive:,} device writes proposed, more than " + " and ".join(over)
    return BreakerVerdict(bool(over), reason, destructive, scanned, limits.max_destructive_per_run,
                          limits.max_destructive_fraction, allowed)
