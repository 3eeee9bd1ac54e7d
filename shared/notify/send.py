"""Sending notifications through the Graph port (sendMail from the MAIL_SENDER mailbox)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.notify.messages import Notice, render_digest
from shared.ports import GraphPort, GraphResult


async def send_notice(graph: GraphPort, sender: str, notice: Notice) -> GraphResult:
    """One message to all of the notice's recipients."""
    return await graph.send_mail(sender, notice.to, notice.subject, notice.body_html)


async def send_digests(
    graph: GraphPort, sender: str, run_id: str, notices: Sequence[Notice], now: datetime
) -> list[tuple[str, GraphResult]]:
    """One digest per recipient for a run; returns (recipient, result) for the audit log."""
    sent: list[tuple[str, GraphResult]] = []
    for address, subject, body in render_digest(run_id, notices, now):
        sent.append((address, await graph.send_mail(sender, [address], subject, body)))
    return sent
