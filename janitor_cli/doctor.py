"""`janitor doctor`: check settings, the queue, the audit store and Graph permissions before a run."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from janitor_cli._common import run


def doctor(
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy YAML to check (default: JANITOR_POLICY).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as a JSON list.")] = False,
    sample_settings: Annotated[
        bool, typer.Option("--sample-settings", help="Print local.settings.sample.json (every setting, documented) and exit.")
    ] = False,
) -> None:
    """One line per check, with the fix for each failure; exit status 1 when any check fails."""
    from shared.doctor import exit_code, run_checks, sample_settings_text

    logging.getLogger("azure").setLevel(logging.CRITICAL)  # credential chatter: the checks report failures themselves
    if sample_settings:
        sys.stdout.write(sample_settings_text())
        return
    results = run(run_checks(policy_file=str(policy) if policy else None))
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for result in results:
            print(result.line())
    raise typer.Exit(exit_code(results))


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
