"""`janitor policy check FILE` and `janitor policy show`: validate a policy before the nightly scan uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from janitor_cli._common import echo, fail
from shared import settings
from shared.policy import PolicyError, check_policy_text, dump_policy, load_policy, parse_policy, policy_hash, read_policy_file

policy_app = typer.Typer(help="Validate and show the policy (YAML) the scan and worker follow.", no_args_is_help=True)


@policy_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="Policy YAML file to validate.")]) -> None:
    """Print OK, or each problem with its path (exit 2)."""
    try:
        text = read_policy_file(file)
    except PolicyError as exc:
        raise fail(f"{file}: {exc.problems[0].message}") from None
    problems = check_policy_text(text)
    if problems:
        echo(f"{file}: {len(problems)} problem(s)")
        for problem in problems:
            echo(f"  {problem}")
        raise typer.Exit(2)
    echo(f"OK: {file} is a valid policy (hash {policy_hash(parse_policy(text, source=str(file)))})")


@policy_app.command("show")
def show(
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (default: JANITOR_POLICY, else defaults).")] = None,
) -> None:
    """Print the effective policy (defaults filled in) and its hash."""
    try:
        effective = load_policy(policy)
    except PolicyError as exc:
        echo(str(exc), err=True)
        raise typer.Exit(2) from None
    source = str(policy) if policy else settings.get("JANITOR_POLICY") or "the safe defaults (JANITOR_POLICY is not set)"
    echo(f"# effective policy from {source}; hash {policy_hash(effective)}")
    echo(dump_policy(effective), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
