"""The blast-radius breaker's arithmetic, at and around both limits."""

from __future__ import annotations

import pytest

from shared.policy import LimitsPolicy, parse_policy
from shared.scan import check_breaker


def limits(per_run: int = 500, fraction: float = 0.05):
    return parse_policy(f"limits:\n  max_destructive_per_run: {per_run}\n  max_destructive_fraction: {fraction}\n").limits


@pytest.mark.parametrize(
    ("destructive", "scanned", "halted"),
    [(0, 0, False), (500, 100_000, False), (501, 100_000, True), (1_000, 20_000, True), (50, 1_000, False), (51, 1_000, True),
     (1, 19, True), (0, 19, False)],
)
def test_halts_only_above_the_tighter_limit(destructive, scanned, halted):
    verdict = check_breaker(destructive, scanned, limits())
    assert verdict.halted is halted
    assert verdict.allowed == min(500, int(0.05 * scanned + 1e-9))
    assert (verdict.reason is not None) is halted


def test_reason_names_each_limit_exceeded_with_the_numbers():
    both = check_breaker(4_000, 20_000, limits())
    assert both.reason == (
        "breaker: 4,000 device writes proposed, more than limits.max_destructive_per_run 500 and "
        "limits.max_destructive_fraction 0.05 of 20,000 devices scanned (1,000)"
    )
    only_run = check_breaker(600, 1_000_000, limits())
    assert "max_destructive_per_run 500" in only_run.reason and "fraction" not in only_run.reason
    only_fraction = check_breaker(60, 1_000, limits(per_run=10_000))
    assert "fraction 0.05 of 1,000 devices scanned (50)" in only_fraction.reason and "per_run" not in only_fraction.reason
    assert both.record()["destructive_proposed"] == 4_000 and both.record()["halted"] is True


def test_zero_per_run_never_lets_a_destructive_action_through():
    assert check_breaker(1, 1_000_000, limits(per_run=0)).halted
    assert not check_breaker(0, 1_000_000, limits(per_run=0)).halted


def test_preview_says_by_how_much_and_which_limits_to_raise():
    limits = LimitsPolicy(max_destructive_per_run=500, max_destructive_fraction=0.05)
    verdict = check_breaker(1_802, 100_000, limits)
    assert verdict.halted and verdict.allowed == 500 and verdict.over_by == 1_302
    assert verdict.advice() == "raise limits.max_destructive_per_run to at least 1,802"
    assert "1,802 device writes proposed, 1,302 over the 500 allowed" in verdict.preview()
    both = check_breaker(4_000, 20_000, limits)
    assert both.advice() == (
        "raise limits.max_destructive_per_run to at least 4,000 and limits.max_destructive_fraction to at least 0.2"
    )
    assert check_breaker(10, 20_000, limits).over_by == 0
