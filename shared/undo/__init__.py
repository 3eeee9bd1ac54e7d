"""Undo what a run did, restore what it deleted: the checks (pure), the plan from the audit log, and the queueing.

    from shared.undo import check, AD_STEPS
"""

from __future__ import annotations

from shared.undo.checks import AD_STEPS, Verdict, check, check_reenable, check_restore, restorable_until

__all__ = ["AD_STEPS", "Verdict", "check", "check_reenable", "check_restore", "restorable_until"]
