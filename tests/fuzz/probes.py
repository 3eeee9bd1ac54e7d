"""Oracles for the fuzz runs: each takes one hostile input, runs it through the real code and asserts the
promise (no forgery accepted, no 5xx, every rejection a clear 4xx or a clear CLI error, nothing queued for
a rejected request). Each returns a short label of what happened; bench/fuzz.py counts the labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import ipaddress
import json
import posixpath
import re
import time
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

import httpx
import typer
from typer.testing import CliRunner

from functions.tickets import _response
from janitor_cli import audit as audit_cli
from janitor_cli import diagnose as diagnose_cli
from janitor_cli import policy as policy_cli
from shared import commands
from shared.audit import SqliteAuditLog
from shared.audit.chain import normalize_data, normalize_entry
from shared.audit.codec import RECORD_FIELDS
from shared.audit.export import BOM, to_csv
from shared.audit.http import CONTINUATION_HEADER, MAX_PAGE_BYTES, HttpAnswer, answer_query
from shared.diagnosis import DsregcmdParseError, parse_dsregcmd
from shared.diagnosis.engine import MAX_CODES, diagnose
from shared.diagnosis.model import Facts
from shared.errors import AuditUnavailable, GraphNotFound, TransientError
from shared.graph.gateway import GraphGateway
from shared.policy import PolicyError, parse_policy
from shared.ports import AuditEntry, AuditRecord
from shared.tickets import (
    HEADER,
    NO_OBJECT_ID,
    CallbackRefused,
    check_callback_url,
    deliver,
    get_ticket,
    parse_allowlist,
    post_ticket,
    request_id,
)
from shared.tickets import callbacks as callbacks_module
from shared.tickets.intake import NEEDS_ONE_DEVICE
from shared.tickets.payloads import MAX_BODY_BYTES
from tests.diagnosis.fakes import device as fake_device
from tests.fuzz.strategies import ALLOWLIST, NOW, PRIVATE_RANGES, PROBE_DEVICE_ID, WINDOW, generic, valid_header
from tests.tickets.helpers import SECRET, make_intake

#: Seconds one parse may take: real inputs take milliseconds; the regular-expression blow-up found here took hours.
PARSE_SECONDS = 2.0
#: A clear error names the problem and the path; anything longer is the input echoed back.
CLEAR_MESSAGE_CHARS = 2_000
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class WebhookRig:
    """POST /api/tickets as the Functions adapter runs it, over the real intake (fake Graph with DESKTOP-1 and
    LAPTOP-9, the SQLite audit log, a recording queue), with the server clock fixed at NOW."""

    def __init__(self, tmp: Path) -> None:
        self.intake, self.sender = make_intake(tmp, allowlist=ALLOWLIST)

    async def post(self, body: bytes, header: str | None, *, now: float = NOW) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"} | ({HEADER: header} if header is not None else {})
        answer = await post_ticket(
            body, headers, {}, intake=lambda: self.intake, secret=lambda: SECRET, base_url="https://janitor.example.net",
            now=lambda: now,
        )
        response = _response(answer)  # exactly what the Functions host sends back
        assert response.status_code < 500, f"5xx ({response.status_code}) for {body[:120]!r}"
        assert response.mimetype == "application/json"
        return response.status_code, json.loads(response.get_body())

    async def close(self) -> None:
        await self.intake.audit.close()


def assert_clear(status: int, answer: dict) -> None:
    """A rejection says what is wrong: 401 says nothing more, 400 lists the problems, 413 the limit."""
    assert 400 <= status < 500, status
    assert isinstance(answer.get("error"), str) and answer["error"].strip(), answer
    if status == 401:
        assert answer == {"error": "unauthorized"}, answer  # no detail leaked
    if status == 400:
        assert answer.get("problems") and all(isinstance(p, str) and p for p in answer["problems"]), answer


# --------------------------------------------------------------------------- webhook


async def probe_forgery(rig: WebhookRig, body: bytes, header: str) -> str:
    """A signature nobody holding the secret made for this body at a fresh time: never accepted, nothing queued."""
    queued = len(rig.sender.sent)
    status, answer = await rig.post(body, header)
    assert status != 202, f"forgery accepted: {header!r}"
    assert status == (413 if len(body) > MAX_BODY_BYTES else 401), (status, answer)
    assert_clear(status, answer)
    assert len(rig.sender.sent) == queued
    return str(status)


async def probe_replay(rig: WebhookRig, body: bytes, offset: int) -> str:
    """A genuine request replayed `offset` seconds after it was signed: inside the window it is the same request
    (same id, nothing queued twice); outside it is 401."""
    signed_at = NOW - offset
    header = valid_header(body, signed_at)
    queued = len(rig.sender.sent)
    first = await rig.post(body, header, now=signed_at)
    again = await rig.post(body, header, now=NOW)
    if abs(offset) <= WINDOW:
        assert first[0] == again[0] == 202 and first[1] == again[1], (first, again)
        assert len(rig.sender.sent) - queued <= 1
        return "replay_in_window_idempotent"
    assert first[0] == 202 and again[0] == 401, (first, again)
    assert_clear(*again)
    assert len(rig.sender.sent) - queued <= 1
    return "replay_refused"


async def probe_hostile_body(rig: WebhookRig, body: bytes) -> str:
    """A genuinely signed but hostile body: 202 for a valid ticket, else a clear 400/413; never 5xx."""
    queued = len(rig.sender.sent)
    status, answer = await rig.post(body, valid_header(body))
    if status == 202:
        assert len(rig.sender.sent) - queued <= 1
        for message in rig.sender.sent[queued:]:
            commands.decode(message.body)  # what was queued is a valid command
        return "202"
    assert_clear(status, answer)
    assert len(rig.sender.sent) == queued
    if len(body) > MAX_BODY_BYTES:
        assert status == 413
    return str(status)


async def probe_device_name(rig: WebhookRig, name: str, action: str, ticket: str) -> str:
    """A device name dressed up to look like a real one never acts on that real one; invisible characters are refused."""
    body = json.dumps({"ticket_id": ticket, "device": name, "action": action, "requested_by": "helpdesk@contoso.com"}).encode()
    queued = len(rig.sender.sent)
    status, answer = await rig.post(body, valid_header(body))
    # whitespace around a name is trimmed like spaces (Python's notion: NEL, U+2028 and \x1c-\x1f included);
    # what is left is the name, and it must hold no invisible or control character
    invisible = any(unicodedata.category(c) in _INVISIBLE for c in name.strip())
    if invisible:
        assert status == 400 and any(p.startswith("device") for p in answer["problems"]), (name, status, answer)
        return "refused_invisible"
    if status == 400:
        assert_clear(status, answer)
        return "refused"
    assert status == 202, (status, answer)
    for message in rig.sender.sent[queued:]:
        command = commands.decode(message.body)
        if command.device_object_id != NO_OBJECT_ID:  # resolved: only a device with exactly that name (any case)
            assert (command.display_name or "").lower() == name.strip().lower(), (name, command.display_name)
        else:
            assert action not in NEEDS_ONE_DEVICE
    return "accepted_literally"


# --------------------------------------------------------------------------- callbacks

_ALLOW = parse_allowlist(ALLOWLIST)


def probe_callback_url(url: str) -> str:
    """Accepted only when the host the HTTP client would connect to is allowlisted, with no userinfo, https (or
    http to the listed loopback address); every refusal is CallbackRefused with a message."""
    try:
        accepted = check_callback_url(url, _ALLOW)
    except CallbackRefused as exc:
        assert str(exc).startswith("callback_url: "), exc
        return "refused"
    client = httpx.URL(accepted)  # the client must parse it, and see the same host the check saw
    host = client.host.lower().rstrip(".")
    assert host == (urlsplit(accepted).hostname or "").lower().rstrip("."), (url, client.host)
    assert not client.userinfo, url
    port = client.port or (443 if client.scheme == "https" else 80)
    assert any(entry.matches(host, port) for entry in _ALLOW), (url, host, port)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        assert (str(address), port) == ("127.0.0.1", 8443), url  # IP literals only when listed exactly
    assert client.scheme == "https" or (address is not None and address.is_loopback), url
    return "accepted"


async def probe_resolution(host: str, resolved: list[str]) -> str:
    """A listed name whose DNS answer reaches this machine, a link-local, metadata, private or reserved address is
    refused at delivery (the allowlist lists 127.0.0.1 for port 8443 only; callbacks here go to 443)."""
    addresses = [ipaddress.ip_address(a) for a in resolved]

    async def answer(_host: str, _port: int) -> list[Any]:
        return addresses

    with mock.patch.object(callbacks_module, "_resolved_addresses", answer):
        try:
            await callbacks_module.resolve_callback(f"https://{host}/cb", _ALLOW)
        except CallbackRefused as exc:
            assert "resolves to" in str(exc)
            return "refused"
    local = host == "localhost"
    dangerous = [a for a in addresses if must_never_reach(a) or (must_be_listed(a) and not (a.is_loopback and local))]
    assert not dangerous, f"{host} -> {dangerous} was not refused"
    return "allowed"


# --------------------------------------------------------------------------- dsregcmd and policy


def probe_dsregcmd(text: str | bytes) -> str:
    """Parsed (and JSON-ready) or DsregcmdParseError with a message; quickly, whatever the input."""
    started = time.perf_counter()
    try:
        status = parse_dsregcmd(text)
    except DsregcmdParseError as exc:
        assert str(exc).strip()
        label = "refused"
    else:
        json.dumps(status.to_json())
        label = "parsed"
    elapsed = time.perf_counter() - started
    assert elapsed < PARSE_SECONDS, f"parsing took {elapsed:.1f} s for {len(text)} characters"
    return label


def probe_policy(text: str) -> str:
    """A Policy, or PolicyError listing problems, each with a path and a message; quickly."""
    started = time.perf_counter()
    try:
        parse_policy(text)
        label = "valid"
    except PolicyError as exc:
        assert exc.problems and all(p.message.strip() for p in exc.problems), exc
        longest = max(len(str(p)) for p in exc.problems)
        assert longest < CLEAR_MESSAGE_CHARS, f"a problem message of {longest:,} characters is not a clear error"
        label = "refused"
    elapsed = time.perf_counter() - started
    assert elapsed < PARSE_SECONDS, f"policy check took {elapsed:.1f} s"
    return label


def cli_app() -> typer.Typer:
    """The `janitor` commands the fuzz runs call (registered as the real CLI registers them)."""
    app = typer.Typer()
    diagnose_cli.register(app)
    policy_cli.register(app)
    return app


_app = cli_app()
_cli = CliRunner()


def probe_cli(args: list[str], path: Path, content: str | bytes) -> str:
    """`janitor dsregcmd FILE` / `janitor policy check FILE`: exit 0, or exit 2 with a one-line reason; never a traceback."""
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", errors="surrogatepass"))
    result = _cli.invoke(_app, [*args, str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2), (result.exit_code, result.output[-500:])
    if result.exit_code == 2:
        assert result.output.strip(), "a refusal must say why"
        assert "Traceback" not in result.output
        assert len(result.output) < 20 * CLEAR_MESSAGE_CHARS, f"{len(result.output):,} characters of refusal"
    return f"exit_{result.exit_code}"


# --------------------------------------------------------------------------- round two (issue 12): one oracle per attack

#: The largest answer body and audit record the runs produced; bench/fuzz.py reports them next to their bounds.
LARGEST: dict[str, int] = {"response_bytes": 0, "record_bytes": 0}
#: A diagnosis record (the decision's data) stays under this, whatever the dsregcmd output holds.
MAX_DIAGNOSIS_BYTES = 64 * 1024
#: An audit API page: MAX_PAGE_BYTES of records, plus the wrapper (or one record alone, when it is larger).
MAX_RESPONSE_BYTES = MAX_PAGE_BYTES + 4096
NOW_AT = datetime.fromtimestamp(NOW, UTC)
csv.field_size_limit(MAX_RESPONSE_BYTES)  # a record's data cell may hold 200,000 characters of JSON


def _measure(kind: str, size: int) -> None:
    LARGEST[kind] = max(LARGEST[kind], size)


def probe_diagnosis_size(text: str) -> str:
    """A dsregcmd output naming thousands of codes, or holding long values, makes a diagnosis of bounded size."""
    local = parse_dsregcmd(text)
    facts = Facts(device_ref="DESKTOP-1", now=NOW_AT, local=local, device=fake_device("DESKTOP-1", device_id=PROBE_DEVICE_ID))
    diagnosis = diagnose(facts)
    assert len(diagnosis.error_codes) <= MAX_CODES, len(diagnosis.error_codes)
    size = len(json.dumps(normalize_data({"diagnosis": diagnosis.to_builtins()})).encode())
    _measure("record_bytes", size)
    assert size <= MAX_DIAGNOSIS_BYTES, f"a diagnosis record of {size:,} bytes"
    return "capped" if len({(r.code, r.field) for r in local.error_codes}) > MAX_CODES else "whole"


class AuditRig:
    """A SQLite audit log holding large records (data near the 200,000-character cap) and small ones, as the API
    serves it (a fresh adapter per request, like the Functions host); the CLI reads the same file."""

    def __init__(self, tmp: Path, *, large: int = 40, small: int = 200) -> None:
        self.folder = tmp
        self.path = tmp / "audit.sqlite3"
        self.added = 0
        asyncio.run(self._fill(large, small))

    def open(self) -> SqliteAuditLog:
        return SqliteAuditLog(self.path)

    async def _fill(self, large: int, small: int) -> None:
        audit = self.open()
        try:
            bulk = {"diagnosis": {"evidence": ["x" * 1_000] * 140}}
            for i in range(large):
                await audit.append(AuditEntry(kind="decision", command_id=f"big-{i}", decision="acted", data=bulk))
            for i in range(small):
                entry = AuditEntry(kind="ticket", command_id=f"t-{i}", display_name=f"DESKTOP-{i}", data={"phase": "intake"})
                await audit.append(entry)
        finally:
            await audit.close()

    def add(self, text: str) -> str:
        """Append a decision whose name, reason, ticket and data carry `text`; returns its ticket filter value."""
        self.added += 1
        ticket = f"T-{self.added}"

        async def go() -> None:
            audit = self.open()
            try:
                await audit.append(AuditEntry(kind="decision", ticket=ticket, display_name=text, reason=text, decision="acted",
                                              action="disable", data={"note": text}))
            finally:
                await audit.close()

        asyncio.run(go())
        return ticket


async def _answer(rig: AuditRig, params: dict[str, str]) -> HttpAnswer:
    """One API request on a fresh adapter, closed after (the API itself never closes the log it is given)."""
    audit = rig.open()
    try:
        return await answer_query(params, lambda: audit, now=NOW_AT)
    finally:
        await audit.close()


async def probe_audit_page(rig: AuditRig, params: dict[str, str]) -> str:
    """GET /api/audit answers at most MAX_PAGE_BYTES of records (plus the wrapper), whatever `limit` says; the
    continuation then resumes right after the last record served."""
    answer = await _answer(rig, params)
    assert answer.status == 200, (answer.status, answer.body[:300])
    _measure("response_bytes", len(answer.body))
    assert len(answer.body) <= MAX_RESPONSE_BYTES, f"a page of {len(answer.body):,} bytes"
    if params["format"] == "json":
        count = json.loads(answer.body)["count"]
    else:
        count = len(list(csv.reader(io.StringIO(answer.body.decode().removeprefix(BOM), newline="")))) - 1
    assert 1 <= count <= int(params["limit"]), count
    return "cut_by_bytes" if count < int(params["limit"]) and CONTINUATION_HEADER in answer.headers else "cut_by_limit"


async def probe_filters(rig: AuditRig, params: dict[str, str]) -> str:
    """Review filters that overflow datetime, SQLite or int(): 200 or a 400 naming the parameter, never a 5xx."""
    answer = await _answer(rig, params)
    assert answer.status in (200, 400), f"5xx ({answer.status}) for {params!r}: {answer.body[:300]!r}"
    if answer.status == 400:
        assert json.loads(answer.body)["error"]["parameter"] in params
    return str(answer.status)


_audit_app = typer.Typer()
audit_cli.register(_audit_app)
#: What may never reach a terminal: C0/C1 controls but tab and line feed (CR only in CRLF), DEL, bidi controls,
#: line and paragraph separators.
TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]|\r(?!\n)")


def probe_audit_cli(rig: AuditRig, args: list[str]) -> str:
    """`janitor audit ...`: exit 0, or 2 with a one-line reason, nothing unsafe for a terminal; never a traceback."""
    result = _cli.invoke(_audit_app, ["audit", *args], env={"JANITOR_DATA_DIR": str(rig.folder), "AUDIT_BACKEND": "sqlite"})
    assert result.exception is None or isinstance(result.exception, SystemExit), f"traceback: {result.exception!r} for {args!r}"
    assert "Traceback" not in result.output, f"traceback for {args!r}"
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output[-300:])
    if result.exit_code == 2:
        assert result.output.strip(), "a refusal must say why"
    bad = TERMINAL_UNSAFE.search(result.output)
    assert bad is None, f"{bad.group()!r} reached the terminal for {args!r}"
    return f"exit_{result.exit_code}"


def probe_terminal(rig: AuditRig, text: str) -> str:
    """A device name and reason carrying escape sequences: `janitor audit list` (text and --json) and `export` to the
    terminal print them escaped; the JSON still reads back as the recorded text."""
    ticket = rig.add(text)
    for args in (["list"], ["export"], ["export", "--format", "json"], ["export", "--format", "excel"]):
        probe_audit_cli(rig, [*args, "--ticket", ticket])
    result = _cli.invoke(_audit_app, ["audit", "list", "--ticket", ticket, "--json"], env={"JANITOR_DATA_DIR": str(rig.folder)})
    assert TERMINAL_UNSAFE.search(result.output) is None
    [line] = [line for line in result.stdout.splitlines() if line.strip()]
    assert json.loads(line)["display_name"] == normalize_text(text), "the JSON no longer reads back"
    return "escaped" if TERMINAL_UNSAFE.search(text) else "plain"


def normalize_text(text: str) -> str:
    """The display name as the audit log stores it (clipped to its field limit)."""
    entry = normalize_entry(AuditEntry(kind="decision", display_name=text))
    return entry.display_name or ""


# callbacks: rebinding and address ranges

def _forms(address: Any) -> list[Any]:
    """The address and any IPv4 address it wraps (mapped, 6to4, NAT64 well-known prefix, compatible)."""
    forms = [address]
    if address.version == 6:
        forms += [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
        if address in ipaddress.ip_network("64:ff9b::/96") or address in ipaddress.ip_network("::/96"):
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


def must_never_reach(address: Any) -> bool:
    """Link-local, metadata, multicast, unspecified: refused even when listed."""
    return any(
        f.is_link_local or f.is_multicast or f.is_unspecified or f in callbacks_module.METADATA_ADDRESSES for f in _forms(address)
    )


def must_be_listed(address: Any) -> bool:
    """Private, shared, reserved, translation or loopback: refused unless CALLBACK_ALLOWLIST lists the IP."""
    nets = [ipaddress.ip_network(n) for n in PRIVATE_RANGES]
    return any(not f.is_global or f.is_loopback or any(f in n for n in nets if n.version == f.version) for f in _forms(address))


def _allow_entry(address: Any) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


async def probe_address(address: str, listed: bool) -> str:
    """A listed name resolving to `address`: refused when it is private, shared, reserved or a translation range (unless
    the allowlist lists the IP), and always when link-local, metadata, multicast or unspecified. No socket is opened."""
    ip = ipaddress.ip_address(address)
    allow = parse_allowlist("hooks.example.com" + (f", {_allow_entry(ip)}" if listed else ""))

    async def resolver(_host: str, _port: int) -> list[Any]:
        return [ip]

    with mock.patch.object(callbacks_module, "_resolved_addresses", resolver):
        try:
            pinned = await callbacks_module.resolve_callback("https://hooks.example.com/cb", allow)
        except CallbackRefused as exc:
            assert "resolves to" in str(exc)
            return "refused"
    assert pinned == ip
    assert not must_never_reach(ip), f"{address} was allowed"
    assert listed or not must_be_listed(ip), f"{address} was allowed without being listed"
    return "allowed_listed" if listed else "allowed"


async def probe_rebinding(first: list[str], later: list[str]) -> str:
    """A name answering public addresses first and internal ones next: one lookup only, and the request goes to the
    checked address (Host and SNI still the name), or nothing is sent. Served by a mock transport: no socket."""
    lookups: list[str] = []

    async def resolver(host: str, _port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in (first if len(lookups) == 1 else later)]

    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as client:
        with mock.patch.object(callbacks_module, "_resolved_addresses", resolver):
            result = await deliver("https://hooks.example.com/cb", {"request_id": "r"}, secret=SECRET, allowlist=_ALLOW, now=NOW,
                                   client=client)
    assert lookups == ["hooks.example.com"], f"{len(lookups)} lookups"
    if not sent:
        assert result.status == 0 and "resolves to" in (result.error or ""), result
        return "refused"
    [request] = sent
    checked = ipaddress.ip_address(first[0])
    assert ipaddress.ip_address(request.url.host) == checked, (request.url, first)
    assert request.headers["host"] == "hooks.example.com" and request.extensions["sni_hostname"] == "hooks.example.com"
    assert not any(must_never_reach(ipaddress.ip_address(a)) or must_be_listed(ipaddress.ip_address(a)) for a in first), first
    return "pinned"


# webhook: ids, look-alikes, 503s

async def probe_guessed_id(rig: WebhookRig, body: bytes) -> str:
    """The request id of an accepted ticket cannot be computed from the ticket: the unkeyed hash and an id keyed with
    another secret find nothing (404), the real id is found."""
    status, answer = await rig.post(body, valid_header(body))
    assert status == 202, (status, answer)
    rid, data = answer["request_id"], json.loads(body)
    guesses = {
        commands.message_id("ticket", "generic", data["ticket_id"].strip().lower(), data["action"]),
        request_id(b"another-key-0123456789abcdefghijklmnop", "generic", data["ticket_id"], data["action"]),
        hashlib.sha256(f"generic:{data['ticket_id']}:{data['action']}".encode()).hexdigest()[:32],
    }
    assert rid not in guesses, f"forgery accepted: a guessed id {rid} answered"
    for guess in guesses:
        assert (await get_ticket(guess, audit=lambda: rig.intake.audit)).status == 404, f"forgery accepted: {guess} answered"
    assert (await get_ticket(rid, audit=lambda: rig.intake.audit)).status == 200
    return "unguessable"


async def probe_lookalike(rig: WebhookRig, field: str, value: str) -> str:
    """A ticket_id or requested_by holding a blank letter, a space other than U+0020 or a run of combining marks is a
    400 naming the field; nothing is queued."""
    body = json.dumps(generic(**{field: value})).encode()
    queued = len(rig.sender.sent)
    status, answer = await rig.post(body, valid_header(body))
    assert status == 400 and any(p.startswith(field) for p in answer["problems"]), (value, status, answer)
    assert len(rig.sender.sent) == queued
    return "refused"


class _Down:
    """An intake or audit log whose store is down, with internals in the error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def submit(self, body: bytes, *, source: str | None = None) -> Any:
        raise self.error

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    async def iter_records(self, query: Any) -> Any:
        raise self.error
        yield  # an async generator

    async def close(self) -> None:
        pass


GENERIC_503 = {"error": "temporarily unavailable, retry later"}


async def probe_unavailable(detail: str, transient: bool) -> str:
    """A store or Graph that is down: a 503 whose body says only "retry later" (the detail is for the log)."""
    secret = f"SECRET-{detail}"
    error: Exception = TransientError(secret) if transient else AuditUnavailable(secret)
    body = json.dumps(generic()).encode()
    down: Any = _Down(error)  # stands in for an intake and an audit log
    store_down: Any = _Down(AuditUnavailable(secret))
    headers = {HEADER: valid_header(body)}
    posted = await post_ticket(body, headers, {}, intake=lambda: down, secret=lambda: SECRET, now=lambda: NOW)
    read = await get_ticket("0" * 32, audit=lambda: down)
    audit = await answer_query({}, lambda: store_down, now=NOW_AT)
    assert posted.status == read.status == audit.status == 503, (posted, read, audit)
    assert posted.body == read.body == GENERIC_503, (posted.body, read.body)
    for text in (json.dumps(posted.body), json.dumps(read.body), audit.body.decode()):
        assert "SECRET-" not in text, f"internals in a 503 body: {text[:200]}"
    return "503_generic"


# CSV

_SPREADSHEET_FORMULA = re.compile("[=+\\-@\uff1d\uff0b\uff0d\uff20]")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[\]}]*")


def _record(text: str) -> AuditRecord:
    entry = AuditEntry(kind="decision", ticket=text[:100], display_name=text, reason=text, data={"note": text, "n": [1, -2]})
    return AuditRecord(partition="2025-06-15", seq=1, record_id="2025-06-15:0000000001", at=NOW_AT, entry=entry,
                       prev_hash="0" * 64, hash="0" * 64)


def probe_csv(text: str) -> str:
    """Split every line of a CSV export on any separator a spreadsheet may choose (quotes ignored, as a semicolon locale
    reading a comma file does): no piece starts a formula (plain numbers aside). Both `csv` and `excel` still parse
    back into one header and one row of every column."""
    for fmt in ("csv", "excel"):
        out = to_csv([_record(text)], fmt)
        assert out.startswith(BOM) == (fmt == "excel")
        rows = list(csv.reader(io.StringIO(out.removeprefix(BOM), newline="")))
        assert len(rows) == 2 and all(len(row) == len(RECORD_FIELDS) for row in rows), rows
        for separator in ",;\t|":
            for line in re.split(r"\r\n|\r|\n", out.removeprefix(BOM)):
                for piece in line.split(separator):
                    start = piece.lstrip(' \u00a0"')
                    number = _PLAIN_NUMBER.fullmatch(start.rstrip(' "'))
                    assert not _SPREADSHEET_FORMULA.match(start) or number, f"{fmt}: formula {start[:40]!r} after {separator!r}"
    return "defused" if _SPREADSHEET_FORMULA.search(text) else "plain"


# Graph URL paths

_UNSAFE_IN_PATHS = re.compile(r"[/\\?%\s\x00-\x1f\x7f]|^\.{1,2}$|^$")


async def probe_graph_path(value: str) -> str:
    """A value placed in a Graph URL path: a request is built only for a GUID or UPN, with the value as one encoded
    segment (no `..`, no extra segment or query); anything else sends nothing. `_attempt` records instead of sending."""
    gateway = GraphGateway("http://127.0.0.1:9/v1.0")
    urls: list[str] = []

    async def record(info: Any) -> Any:
        urls.append(info.url)
        if info.url.endswith("/$batch"):
            urls.extend("http://127.0.0.1:9/v1.0" + r["url"] for r in json.loads(info.content)["requests"])
        raise GraphNotFound("recorded, not sent", status=404)

    gateway._attempt = record  # type: ignore[method-assign]
    calls = [
        lambda: gateway.get_user(value), lambda: gateway.get_device(value), lambda: gateway.get_device_by_device_id(value),
        lambda: gateway.user_registered_devices(value), lambda: gateway.registered_owners(value),
        lambda: gateway.group_device_ids(value), lambda: gateway.check_member_groups(value, [str(uuid.uuid4())]),
        lambda: gateway.send_mail(value, ["a@b.example"], "s", "b"), lambda: gateway.delete_devices([value]),
    ]  # fmt: skip
    for call in calls:
        with contextlib.suppress(GraphNotFound):  # InvalidPathSegment is one: refused before anything is built
            await call()
    await gateway.close()
    if _UNSAFE_IN_PATHS.search(value) or ".." in value:
        assert not urls, f"{value!r} reached Graph: {urls}"
    for url in urls:
        path = urlsplit(url).path
        segments = path.split("/")
        assert "." not in segments and ".." not in segments and posixpath.normpath(path) == path, url
        assert unquote(path).count("/") == path.count("/"), f"{value!r} added a segment: {url}"
        assert not urlsplit(url).query or "%24select" in urlsplit(url).query or "$select" in urlsplit(url).query, url
    return "sent" if urls else "refused"
