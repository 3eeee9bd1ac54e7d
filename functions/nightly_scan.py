"""Timer trigger: the nightly scan (schedule: the SCAN_SCHEDULE app setting, NCRONTAB, default 02:00 UTC)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.scan.progress import TenthsLog
from shared.scan.wiring import run_configured_scan

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("nightly_scan")
@bp.timer_trigger(arg_name="timer", schedule="%SCAN_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def nightly_scan(timer: func.TimerRequest) -> None:
    """Scan the tenant once; the run summary goes to the audit log. Errors propagate so the host records them."""
    if timer.past_due:
        log.warning("nightly scan is running late (past due)")
    summary = await run_configured_scan(trigger="nightly", progress=TenthsLog(log))
    log.info("nightly scan %s: %s", summary.run_id, summary.to_json())
