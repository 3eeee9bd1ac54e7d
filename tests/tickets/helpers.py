"""Builders for ticket tests: an intake over fakes, signed requests, and sample payloads."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.audit import SqliteAuditLog
from shared.ports import AuditLog, AuditQuery, OutgoingMessage
from shared.tickets import TicketConfig, TicketIntake, parse_allowlist, sign
from tests.diagnosis.fakes import FakeGraph, device

SECRET = b"test-secret-0123456789abcdefghijklmnopqrstuv"
ID_KEY = b"test-request-id-key-0123456789abcdefghijkl"
SAMPLES = Path(__file__).resolve().parent / "samples"


class RecordingSender:
    """QueueSender that keeps what it was given; `fail` makes the next sends raise (a queue that is down)."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.fail = False

    async def send(self, messages: Sequence[OutgoingMessage]) -> int:
        if self.fail:
            raise ConnectionError("queue unreachable")
        self.sent.extend(messages)
        return len(messages)

    async def close(self) -> None:
        pass


def make_intake(
    tmp_path: Path, graph: FakeGraph | None = None, allowlist: str = "hooks.example.com"
) -> tuple[TicketIntake, RecordingSender]:
    from shared.policy import Policy

    sender = RecordingSender()
    graph = graph or FakeGraph([device("DESKTOP-1"), device("LAPTOP-9")])
    config = TicketConfig(allowlist=parse_allowlist(allowlist), policy=Policy(), id_key=ID_KEY)
    intake = TicketIntake(sender=sender, audit=SqliteAuditLog(tmp_path / "audit.sqlite3"), graph=graph, config=config)
    return intake, sender


def payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ticket_id": "INC-1001",
        "device": "DESKTOP-1",
        "action": "diagnose",
        "requested_by": "helpdesk@contoso.com",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()


def signed_headers(body: bytes, *, secret: bytes = SECRET, at: float | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Janitor-Signature": sign(secret, body, int(time.time() if at is None else at))}


async def ticket_records(audit: AuditLog) -> list[Any]:
    return [r async for r in audit.iter_records(AuditQuery(kind="ticket"))]


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))
