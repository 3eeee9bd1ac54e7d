"""Fuzzing the `dsregcmd /status` parser and the policy loader, as functions and through the CLI.

Every input is parsed, or refused with the parser's own error (the CLI: exit 2 and a reason), quickly.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings

from shared.policy import PolicyError, parse_policy
from tests.fuzz.probes import probe_cli, probe_dsregcmd, probe_policy
from tests.fuzz.strategies import POLICY_REGRESSIONS, dsregcmd_texts, policy_texts

CI = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@CI
@given(text=dsregcmd_texts())
@example(text="|" + " " * 60_000 + "\n AzureAdJoined : YES\n")  # hours of regex backtracking before the fix
@example(text=b"\xff\xfe\x00\xd8A\x00")  # damaged UTF-16: UnicodeDecodeError before the fix
@example(text=b"\xfe\xff\x00")
def test_dsregcmd_parser_parses_or_refuses_quickly(text) -> None:
    probe_dsregcmd(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=dsregcmd_texts())
@example(text=b"\xff\xfe\x00\xd8A\x00")
def test_dsregcmd_cli_exits_0_or_2_with_a_reason(tmp_path, text) -> None:
    probe_cli(["dsregcmd"], tmp_path / "status.txt", text)


@CI
@given(text=policy_texts())
def test_policy_loader_accepts_or_lists_problems_quickly(text: str) -> None:
    probe_policy(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=policy_texts())
def test_policy_check_cli_exits_0_or_2_with_a_reason(tmp_path, text: str) -> None:
    probe_cli(["policy", "check"], tmp_path / "policy.yaml", text)


@pytest.mark.parametrize("name", sorted(POLICY_REGRESSIONS))
def test_inputs_that_used_to_break_the_policy_loader_are_refused_clearly(name: str) -> None:
    """A set as a key (TypeError), runaway nesting (RecursionError), an alias bomb (exponential time and a
    message of megabytes): all found by these runs, now each a PolicyError with a short message."""
    with pytest.raises(PolicyError) as refused:
        parse_policy(POLICY_REGRESSIONS[name])
    assert len(str(refused.value)) < 2_000
