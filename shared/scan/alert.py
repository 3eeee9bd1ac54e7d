"""The message the admins get when the breaker halts a run (pure: builds subject and HTML, sends nothing)."""

from __future__ import annotations

from html import escape

from shared.scan.breaker import BreakerVerdict
from shared.scan.summary import ScanSummary


def breaker_mail(summary: ScanSummary, verdict: BreakerVerdict, *, preview: bool = False) -> tuple[str, str]:
    """(subject, html body) telling the admins what was held back (or, in report mode, would be), why, what to check."""
    if preview:
        return _preview_mail(summary, verdict)
    subject = (
        f"entra-janitor: scan {summary.run_id} halted by the blast-radius breaker "
        f"({verdict.destructive:,} device writes proposed)"
    )
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td style='text-align:right'>{count:,}</td></tr>"
        for name, count in summary.findings.items()
    )
    actions = "".join(
        f"<tr><td>{escape(name)}</td><td style='text-align:right'>{count:,}</td></tr>"
        for name, count in sorted(summary.actions.items())
    )
    body = f"""<p>The nightly scan <b>{escape(summary.run_id)}</b> proposed {verdict.destructive:,} device writes
(tag, clear tag, disable or delete) for {verdict.scanned:,} devices scanned. The policy allows at most {verdict.allowed:,} per run
(limits.max_destructive_per_run {verdict.max_per_run:,}, limits.max_destructive_fraction {verdict.max_fraction:g}).</p>
<p><b>No device write was queued.</b> Each held-back device has a <i>blocked</i> decision (reason: breaker) in the
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


def _preview_mail(summary: ScanSummary, verdict: BreakerVerdict) -> tuple[str, str]:
    """Report mode: nothing was held back; say that enforce mode would halt, by how much, and what to raise."""
    subject = (
        f"entra-janitor: report run {summary.run_id}: enforce mode would halt "
        f"({verdict.destructive:,} device writes proposed, {verdict.allowed:,} allowed)"
    )
    body = f"""<p>The report-mode scan <b>{escape(summary.run_id)}</b> proposed {verdict.destructive:,} device writes
(tag, clear tag, disable or delete) for {verdict.scanned:,} devices scanned: {verdict.over_by:,} more than the
{verdict.allowed:,} the policy allows per run. Report mode writes nothing, so every would-be decision was recorded
(<i>dry_run</i>) with the gates each device would meet.</p>
<p><b>An enforce run with these figures would halt and write nothing.</b> To let it act, {escape(verdict.advice())},
or work the backlog down in smaller steps.</p>
<p>{escape(verdict.reason or "")}</p>"""
    return subject, body
