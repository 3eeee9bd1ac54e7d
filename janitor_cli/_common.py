"""Helpers shared by CLI modules: one clear line and an exit code for errors; text made safe for a terminal.

Device names, reasons, dsregcmd values and ticket fields come from the tenant and from tickets: an ESC or
OSC sequence in one would clear the screen, retitle the window or rewrite earlier lines. Everything the CLI
prints goes through `clean` (via `echo`, `fail` or `TerminalText`), which writes control characters, bidi
overrides and line separators as `\\uXXXX` escapes: readable, and still valid inside JSON strings.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Coroutine
from typing import Any, TextIO

import typer

from shared.errors import ConfigError, JanitorError

#: C0 and C1 controls but tab and line feed (a carriage return only before a line feed: CSV lines end in CRLF),
#: DEL, bidi marks, embeddings, overrides and isolates, and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]|\r(?!\n)")


def clean(text: str) -> str:
    """`text` with every character that could steer a terminal written as a visible `\\uXXXX` escape."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """typer.echo of the cleaned text."""
    typer.echo(clean(message), err=err, nl=nl)


class TerminalText:
    """A text stream that cleans what is written to it (an export sent to standard output)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(clean(text))

    def flush(self) -> None:
        self.stream.flush()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    print(f"error: {clean(message)}", file=sys.stderr)
    return typer.Exit(code)


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; ConfigError and other project errors become a one-line message and exit 2."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        raise fail(f"setting {exc}") from None
    except JanitorError as exc:
        raise fail(str(exc)) from None
