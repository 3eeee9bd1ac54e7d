"""Callbacks: allowlist rules, signed delivery to a local receiver, no redirects, and the audited outbox."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from shared import commands
from shared.errors import ConfigError
from shared.tickets import CallbackRefused, check_callback_url, deliver, deliver_pending, parse_allowlist, ticket_status, verify
from shared.tickets import callbacks as callbacks_module
from shared.worker.records import decision_entry, ticket_entry
from tests.tickets.helpers import SECRET, encode, make_intake, payload


class Receiver:
    """A loopback HTTP endpoint that records what it is sent (and can redirect or fail)."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str | None]] = []
        self.status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), request.headers.get("X-Janitor-Signature")))
        if request.path == "/redirect":
            raise web.HTTPFound("http://127.0.0.1:1/elsewhere")
        return web.json_response({"ok": True}, status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


def test_allowlist_parsing() -> None:
    entries = parse_allowlist(" Hooks.Example.com., *.contoso.com, 127.0.0.1:8443, [::1]:9000 ,")
    assert [(e.host, e.port, e.wildcard) for e in entries] == [
        ("hooks.example.com", None, False),
        ("contoso.com", None, True),
        ("127.0.0.1", 8443, False),
        ("::1", 9000, False),
    ]
    for bad in ("*", "*.", "https://hooks.example.com", "a.*.com", "user@host", "host:port"):
        with pytest.raises(ConfigError, match="CALLBACK_ALLOWLIST"):
            parse_allowlist(bad)


def test_wildcards_match_subdomains_only_and_never_ip_literals() -> None:
    allow = parse_allowlist("*.contoso.com")
    assert check_callback_url("https://itsm.contoso.com/cb", allow)
    for url in ("https://contoso.com/cb", "https://evilcontoso.com/cb", "https://10.0.0.1/cb"):
        with pytest.raises(CallbackRefused):
            check_callback_url(url, allow)
    with pytest.raises(CallbackRefused, match="turned off"):
        check_callback_url("https://itsm.contoso.com/cb", ())


def test_ip_literals_refused_unless_listed_exactly() -> None:
    allow = parse_allowlist("hooks.example.com")
    for url in (
        "https://127.0.0.1/",
        "https://169.254.169.254/",
        "https://[fe80::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://0x7f000001/",
    ):
        with pytest.raises(CallbackRefused, match=r"IP address|not in CALLBACK_ALLOWLIST"):
            check_callback_url(url, allow)
    assert check_callback_url("https://169.254.169.254/x", parse_allowlist("169.254.169.254"))  # explicitly listed


async def test_listed_name_resolving_to_metadata_address_is_refused_at_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    async def rebound(host: str, port: int) -> set:
        return {ipaddress.ip_address("169.254.169.254")}

    monkeypatch.setattr(callbacks_module, "_resolved_addresses", rebound)
    result = await deliver(
        "https://hooks.example.com/x", {"a": 1}, secret=SECRET, allowlist=parse_allowlist("hooks.example.com"), now=time.time()
    )
    assert result.status == 0 and "link-local/metadata" in (result.error or "")


async def test_delivery_is_signed_and_does_not_follow_redirects(receiver: Receiver) -> None:
    allow = parse_allowlist("127.0.0.1")
    now = time.time()
    ok = await deliver(f"{receiver.url}/result", {"request_id": "r1"}, secret=SECRET, allowlist=allow, now=now)
    assert ok.ok and ok.status == 200
    body, header = receiver.received[0]
    assert verify(SECRET, header, body, now=now) == int(now)
    moved = await deliver(f"{receiver.url}/redirect", {"request_id": "r1"}, secret=SECRET, allowlist=allow, now=now)
    assert moved.status == 302 and not moved.ok and len(receiver.received) == 2  # the redirect target was never called
    refused = await deliver("https://hooks.example.com/x", {}, secret=SECRET, allowlist=allow, now=now)
    assert refused.status == 0 and "not in CALLBACK_ALLOWLIST" in refused.error


async def test_outbox_delivers_each_result_once_and_retries_failures(tmp_path: Path, receiver: Receiver) -> None:
    intake, sender = make_intake(tmp_path, allowlist="127.0.0.1")
    result = await intake.submit(encode(payload(callback_url=f"{receiver.url}/cb")))
    await intake.submit(encode(payload(ticket_id="NO-CALLBACK")))
    allow = parse_allowlist("127.0.0.1")
    assert await deliver_pending(intake.audit, secret=SECRET, allowlist=allow, now=_now()) == []  # no result yet

    command = commands.decode(sender.sent[0].body)
    diagnosis = {"stage": 5, "summary": "no PRT"}
    await intake.audit.append(decision_entry(command, "acted", "diagnose", "diagnosed: stage 5", data={"diagnosis": diagnosis}))
    await intake.audit.append(ticket_entry(command, "acted", "diagnose", "diagnosed: stage 5", {"diagnosis": diagnosis}))

    receiver.status = 503
    failed = await deliver_pending(intake.audit, secret=SECRET, allowlist=allow, now=_now())
    assert [d.status for d in failed] == [503]
    receiver.status = 200
    delivered = await deliver_pending(intake.audit, secret=SECRET, allowlist=allow, now=_now())
    assert [d.status for d in delivered] == [200]
    assert await deliver_pending(intake.audit, secret=SECRET, allowlist=allow, now=_now()) == []  # delivered: not sent again

    import json

    sent = json.loads(receiver.received[-1][0])
    assert sent["request_id"] == result.request_id and sent["state"] == "completed" and sent["diagnosis"] == diagnosis
    status = await ticket_status(intake.audit, result.request_id)
    assert status["callback"] == {"attempts": 2, "delivered": True, "last_status": 200}


async def test_outbox_gives_up_after_max_attempts(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path, allowlist="127.0.0.1")
    await intake.submit(encode(payload(callback_url="http://127.0.0.1:9/cb")))  # nothing listens on port 9
    command = commands.decode(sender.sent[0].body)
    await intake.audit.append(ticket_entry(command, "acted", "diagnose", "done", {"diagnosis": {"stage": "healthy"}}))
    allow = parse_allowlist("127.0.0.1")
    for _ in range(3):
        await deliver_pending(intake.audit, secret=SECRET, allowlist=allow, now=_now(), max_attempts=2)
    status = await ticket_status(intake.audit, command.command_id)
    assert status["callback"]["attempts"] == 2 and not status["callback"]["delivered"]


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
