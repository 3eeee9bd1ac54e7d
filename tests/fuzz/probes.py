"""Oracles for the fuzz runs: each takes one hostile input, runs it through the real code and asserts the
promise (no forgery accepted, no 5xx, every rejection a clear 4xx or a clear CLI error, nothing queued for
a rejected request). Each returns a short label of what happened; bench/fuzz.py counts the labels.
"""

from __future__ import annotations

import ipaddress
import json
import time
import unicodedata
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import httpx
import typer
from typer.testing import CliRunner

from functions.tickets import _response
from shared import commands
from shared.cli import diagnose as diagnose_cli
from shared.cli import policy as policy_cli
from shared.diagnosis import DsregcmdParseError, parse_dsregcmd
from shared.policy import PolicyError, parse_policy
from shared.tickets import HEADER, NO_OBJECT_ID, CallbackRefused, check_callback_url, parse_allowlist, post_ticket
from shared.tickets import callbacks as callbacks_module
from shared.tickets.intake import NEEDS_ONE_DEVICE
from shared.tickets.payloads import MAX_BODY_BYTES
from tests.fuzz.strategies import ALLOWLIST, NOW, WINDOW, valid_header
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
    """A listed name whose DNS answer reaches this machine, a link-local or metadata address is refused at delivery."""
    addresses = {ipaddress.ip_address(a) for a in resolved}

    async def answer(_host: str, _port: int) -> set:
        return addresses

    dangerous = []
    for address in addresses:
        forms = [address, *([address.ipv4_mapped] if getattr(address, "ipv4_mapped", None) else [])]
        for form in forms:
            if form.is_link_local or form.is_unspecified or form.is_multicast or form in callbacks_module.METADATA_ADDRESSES:
                dangerous.append(address)
            if form.is_loopback and host != "localhost":
                dangerous.append(address)
    with mock.patch.object(callbacks_module, "_resolved_addresses", answer):
        try:
            await callbacks_module.check_resolution(f"https://{host}/cb", _ALLOW)
        except CallbackRefused as exc:
            assert "resolves to" in str(exc)
            return "refused"
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
