"""The nightly scan service: stream, classify, breaker, queue one command per candidate.

    from shared.scan import run_scan, ScanSummary
"""

from __future__ import annotations

from shared.scan.breaker import BreakerVerdict, check_breaker
from shared.scan.service import (
    SERVER_FILTER,
    ScanProgress,
    command_message_id,
    new_run_id,
    protected_device_ids,
    run_scan,
)
from shared.scan.summary import ScanSummary

__all__ = [
    "SERVER_FILTER",
    "BreakerVerdict",
    "ScanProgress",
    "ScanSummary",
    "check_breaker",
    "command_message_id",
    "new_run_id",
    "protected_device_ids",
    "run_scan",
]
