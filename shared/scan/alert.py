"""The message the admins get when the breaker halts a run (pure: builds subject and HTML, sends nothing)."""

from __future__ import annotations

from html import escape

from shared.scan.breaker import BreakerVerdict
from shared.scan.summary import ScanSummary


def breaker_mail(summary: ScanSummary, verdict: BreakerVerdict) -> tuple[str, str]:
    """(subject, html body) telling the admins what was held back, why, and what to check."""
    subject = (
        f"entra-janitor: scan {summary.run_id} halted by the blast-radius breaker "
        f"({verdict.destructive:,} destructive actions proposed)"
    )
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td style='text-align:right'>{count:,}</td></tr>"
        for name, count in summary.findings.items()
    )
    actions = "".join(
        f"<tr><td>{escape(name)}</td><td style='text-align:right'>{count:,}</td></tr>"
        for name, count in sorted(summary.actions.items())
    )
    body = f"""<p>The nightly scan <b>{escape(summary.run_id)}</b> proposed {verdict.destructive:,} destructive actions
(disable or delete) for {verdict.scanned:,} devices scanned. The policy allows at most {verdict.allowed:,} per run
(limits.max_destructive_per_run {verdict.max_per_run:,}, limits.max_destructive_fraction {verdict.max_fraction:g}).</p>
<p><b>Nothing destructive was queued.</b> Each held-back device has a <i>blocked</i> decision (reason: breaker) in the
audit log; report-only findings were still queued and recorded.</p>
<p>{escape(verdict.reason or "")}</p>
<h3>Findings</h3><table>{rows}</table>
<h3>Proposed actions</h3><table>{actions}</table>
<h3>What to check</h3>
<ul>
<li>Did a policy change lower a threshold (stale.disable_after_days, platform overrides)? Run
<code>janitor policy show</code> and compare the policy hash {escape(summary.policy_hash)} with the last good run.</li>
<li>Did Graph return unusual data (many sign-in timestamps missing or old at once)? Look at the evidence of a
few blocked decisions of run {escape(summary.run_id)} in the audit log.</li>
<li>If the numbers are right (a first clean-up of an old tenant), raise the limits on purpose for one run, or
let the scan work through the backlog in report mode first.</li>
</ul>"""
    return subject, body
