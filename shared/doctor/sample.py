"""Documents generated from the settings table, so they can never drift from the code.

`local.settings.sample.json` (copy it to local.settings.json for `func start`) and the settings and
permission tables in docs/deploy.md are produced here; tests compare the committed files with what these
functions return. Regenerate both with `python -m shared.doctor.regenerate` (from the repository root).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from shared.doctor.permissions import permission_table_markdown
from shared.doctor.platform import LOCAL_HOST_SETTINGS
from shared.settings import SETTINGS

SAMPLE_FILE = "local.settings.sample.json"
DEPLOY_DOC = "docs/deploy.md"
#: Documents that carry the generated settings and permission tables.
TABLE_DOCS = (DEPLOY_DOC, "README.md")


def sample_settings() -> dict[str, object]:
    """local.settings.json content: every setting at its default, and what each one means."""
    values: dict[str, str] = {name: value for name, value, _ in LOCAL_HOST_SETTINGS}
    notes: dict[str, str] = {name: note for name, _, note in LOCAL_HOST_SETTINGS}
    for setting in SETTINGS:
        values[setting.name] = setting.default or ""
        where = "set by infra/ in Azure" if setting.azure else "local or optional; not set in Azure"
        notes[setting.name] = f"{setting.help} ({where})"
    return {"IsEncrypted": False, "Values": values, "Documentation": notes}


def sample_settings_text() -> str:
    """The sample file, byte for byte as committed."""
    return json.dumps(sample_settings(), indent=2, ensure_ascii=False) + "\n"


def settings_table_markdown() -> str:
    """The docs' settings table: name, default, whether Azure sets it, and what it is for."""
    lines = ["| setting | default | set in Azure | what it is for |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(none)"
        help_text = s.help.replace("|", "\\|")
        lines.append(f"| `{s.name}` | {default} | {'yes' if s.azure else 'no'} | {help_text} |")
    return "\n".join(lines)


def with_tables(doc: str) -> str:
    """docs/deploy.md with its generated tables (between `<!-- NAME:start -->` and `<!-- NAME:end -->`) refreshed."""
    for name, table in (("settings-table", settings_table_markdown()), ("permission-table", permission_table_markdown())):
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        if not pattern.search(doc):
            raise ValueError(f"the document has no <!-- {name}:start --> ... <!-- {name}:end --> markers")
        doc = pattern.sub(lambda m, t=table: f"{m.group(1)}{t}\n{m.group(2)}", doc)
    return doc


def refresh(root: Path) -> list[str]:
    """Rewrite the generated files under `root` that are out of date; returns the ones rewritten."""
    changed: list[str] = []
    renderers: list[tuple[str, Callable[[str], str]]] = [
        (SAMPLE_FILE, lambda _: sample_settings_text()),
        *((doc, with_tables) for doc in TABLE_DOCS),
    ]
    for name, render in renderers:
        path = root / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        wanted = render(current)
        if wanted != current:
            path.write_text(wanted, encoding="utf-8")
            changed.append(name)
    return changed
