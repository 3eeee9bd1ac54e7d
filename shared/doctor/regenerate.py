"""`python -m shared.doctor.regenerate`: rewrite local.settings.sample.json and the tables in docs/deploy.md."""

from __future__ import annotations

from pathlib import Path

from shared.doctor.sample import refresh

if __name__ == "__main__":
    print("\n".join(f"rewrote {name}" for name in refresh(Path.cwd())) or "up to date")
