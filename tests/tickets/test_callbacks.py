"""Callbacks: allowlist rules, signed delivery to a local receiver, no redirects, and the audited outbox."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiohttp import web

from shared import commands
from shared.errors import ConfigError
from shared.ports import AuditEntry, AuditQuery, AuditRecord
from shared.tickets import CallbackRefused, check_callback_url, deliver, deliver_pending, parse_allowlist, ticket_status, verify
from shared.tickets import callbacks as callbacks_module
from shared.tickets.status import result_reference
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


async def test_the_diagnosis_is_stored_once_and_the_status_reads_it_from_the_decision(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path)
    result = await intake.submit(encode(payload()))
    command = commands.decode(sender.sent[0].body)
    diagnosis = {"stage": 4, "summary": "the transaction failed", "error_codes": [{"code": "0x801c03f2"}]}
    data = {"diagnosis": diagnosis}
    await intake.audit.append(decision_entry(command, "acted", "diagnose", "diagnosed: stage 4", data=data))
    await intake.audit.append(ticket_entry(command, "acted", "diagnose", "diagnosed: stage 4", result_reference(data)))
    [stored] = [r async for r in intake.audit.iter_records(AuditQuery(kind="ticket")) if r.entry.data.get("phase") == "result"]
    assert "diagnosis" not in stored.entry.data  # before issue 12 both records held it
    assert (await ticket_status(intake.audit, result.request_id))["diagnosis"] == diagnosis


class GeneratedLog:
    """An audit log that makes `n` requests' ticket records as they are read (big results, no callbacks)."""

    def __init__(self, n: int) -> None:
        self.n = n

    async def iter_records(self, query: AuditQuery) -> AsyncIterator[AuditRecord]:
        at = datetime.now(UTC)
        for i in range(self.n):
            for phase, extra in (("intake", {}), ("result", {"diagnosis": {"evidence": "x" * 20_000}})):
                entry = AuditEntry(kind="ticket", command_id=f"r{i}", data={"phase": phase, **extra})
                yield AuditRecord("2025-06-15", 2 * i + 1, "", at, entry, "", "")


async def test_the_outbox_reads_records_as_they_stream_and_keeps_none() -> None:
    tracemalloc.start()
    try:
        due = await deliver_pending(GeneratedLog(2_000), secret=SECRET, allowlist=(), now=_now())  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert due == [] and peak < 5_000_000, f"{peak:,} bytes"  # the list of every record: over 80 MB before issue 12


class TlsReceiver:
    """A loopback HTTPS receiver whose certificate names hooks.example.com (not 127.0.0.1); records SNI and Host."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.sni: list[str | None] = []
        self.hosts: list[str] = []
        self.port = 0

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("hooks.example.com").configure_cert(context)
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)  # type: ignore[assignment,misc,return-value]
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    async def handle(self, request: web.Request) -> web.Response:
        self.hosts.append(request.host)
        return web.Response(status=204)


@pytest.fixture
async def tls_receiver() -> AsyncIterator[TlsReceiver]:
    rec = TlsReceiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=rec.server_context())
    await site.start()
    rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


async def test_delivery_connects_to_the_checked_address_with_the_name_for_tls(
    tls_receiver: TlsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lookup; the connection goes to the address it answered; SNI, the certificate check and Host use the name.
    (Before issue 12 the client resolved the name again to connect: a second answer could point anywhere.)"""
    port = tls_receiver.port
    lookups: list[str] = []

    async def resolver(host: str, _port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")] if len(lookups) == 1 else [ipaddress.ip_address("192.0.2.1")]

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:  # a second lookup of the name would fail here
        assert ipaddress.ip_address(host).is_loopback, f"the client resolved {host!r} itself"
        return real_getaddrinfo(host, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    monkeypatch.setattr(callbacks_module, "_resolved_addresses", resolver)
    allow = parse_allowlist(f"hooks.example.com:{port}, 127.0.0.1:{port}")  # loopback only because listed by IP
    async with httpx.AsyncClient(verify=tls_receiver.client_context(), trust_env=False) as client:
        result = await deliver(f"https://hooks.example.com:{port}/cb", {"request_id": "r"}, secret=SECRET, allowlist=allow,
                               now=time.time(), client=client)
    assert result.ok, result
    assert lookups == ["hooks.example.com"] and tls_receiver.sni == ["hooks.example.com"]
    assert tls_receiver.hosts == [f"hooks.example.com:{port}"]


async def test_a_private_answer_is_refused_before_any_socket_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolver(_host: str, _port: int) -> list[Any]:
        return [ipaddress.ip_address("10.20.30.40")]

    def no_sockets(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a request was sent to {request.url}")

    monkeypatch.setattr(callbacks_module, "_resolved_addresses", resolver)
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_sockets)) as client:
        result = await deliver("https://hooks.example.com/cb", {}, secret=SECRET, allowlist=parse_allowlist("hooks.example.com"),
                               now=time.time(), client=client)
    assert result.status == 0 and "private" in (result.error or "")
