"""The `janitor` command line. Each module in this package adds its own commands via `register(app)`."""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="janitor",
    help="entra-janitor: find and safely remediate pending and stale Entra ID devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module.startswith("_"):
            continue
        importlib.import_module(f"{__name__}.{module}").register(app)


def main() -> None:
    """Console-script entry point."""
    from shared import telemetry

    telemetry.configure()  # ids on every log record; Application Insights only when its connection string is set
    _register_all()
    app()
