"""The safe defaults, as one value: report mode, conservative thresholds, no delete without opt-in."""

from __future__ import annotations

from shared.policy.model import Policy

#: The effective policy when no file is given (JANITOR_POLICY unset).
DEFAULT_POLICY = Policy()
