"""docs/commands.md documents every RemediationCommand field (the schema is defined once, in code)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from shared.commands import RemediationCommand, TicketRef

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def test_every_command_field_is_documented():
    text = DOC.read_text()
    for field in msgspec.structs.fields(RemediationCommand):
        assert f"| `{field.encode_name}` |" in text, f"docs/commands.md does not document {field.encode_name}"
    for field in msgspec.structs.fields(TicketRef):
        assert f"`{field.encode_name}`" in text, f"docs/commands.md does not mention ticket.{field.encode_name}"
