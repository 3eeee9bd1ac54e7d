"""Helpers shared by CLI modules: turn project errors into one clear line and an exit code."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

import typer

from shared.errors import ConfigError, JanitorError


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; ConfigError and other project errors become a one-line message and exit 2."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        raise fail(f"setting {exc}") from None
    except JanitorError as exc:
        raise fail(str(exc)) from None
