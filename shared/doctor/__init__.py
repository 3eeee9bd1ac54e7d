"""`janitor doctor`: is this deployment ready for tonight's run? Settings, stores, Graph permissions.

    from shared.doctor import run_checks, exit_code
"""

from __future__ import annotations

from shared.doctor.permissions import FEATURES, needed_permissions, optional_permissions, permission_table_markdown
from shared.doctor.report import CheckResult, Status, exit_code
from shared.doctor.run import run_checks
from shared.doctor.sample import sample_settings_text, settings_table_markdown

__all__ = [
    "FEATURES",
    "CheckResult",
    "Status",
    "exit_code",
    "needed_permissions",
    "optional_permissions",
    "permission_table_markdown",
    "run_checks",
    "sample_settings_text",
    "settings_table_markdown",
]
