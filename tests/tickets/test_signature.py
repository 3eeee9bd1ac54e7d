"""X-Janitor-Signature: valid, wrong secret, replayed outside the window, body altered -> only the first accepted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shared import commands
from shared.errors import ConfigError
from shared.tickets import SignatureError, post_ticket, request_id, sign, verify, webhook_secret
from shared.tickets.signature import request_id_key
from tests.tickets.helpers import SECRET, encode, make_intake, payload, signed_headers, ticket_records


def test_sign_and_verify_round_trip() -> None:
    body = b'{"a":1}'
    header = sign(SECRET, body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, header, body, now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "malformed"),
        ("t=abc,v1=" + "0" * 64, "malformed"),
        ("t=1700000000", "malformed"),
        ("t=1700000000,v1=" + "0" * 64, "does not match"),
        ("t=1700000000,v1=zz", "does not match"),
    ],
)
def test_bad_headers(header: str | None, why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        verify(SECRET, header, b"{}", now=1_700_000_000)


def test_window_is_five_minutes_both_ways() -> None:
    body = b"{}"
    assert verify(SECRET, sign(SECRET, body, 1000), body, now=1300) == 1000
    assert verify(SECRET, sign(SECRET, body, 1300), body, now=1000) == 1300  # small clock skew ahead
    for now in (1301, 699):
        with pytest.raises(SignatureError, match="window"):
            verify(SECRET, sign(SECRET, body, 1000), body, now=now)


def test_one_of_several_v1_values_may_match() -> None:
    body = b"{}"
    good = sign(SECRET, body, 1000).split("v1=")[1]
    assert verify(SECRET, f"t=1000,v1={'0' * 64},v1={good}", body, now=1000) == 1000


def test_a_timestamp_in_other_digits_is_malformed_not_a_crash() -> None:
    body = b"{}"
    mac = sign(SECRET, body, 1000).split("v1=")[1]
    for t in ("1000\u00b2", "\u0661\u0660\u0660\u0660", "\uff11000"):  # "\u00b2".isdigit() is True; int() raised
        with pytest.raises(SignatureError, match="malformed"):
            verify(SECRET, f"t={t},v1={mac}", body, now=1000)


def test_request_ids_are_keyed_with_a_server_secret() -> None:
    derived = request_id_key({"WEBHOOK_SECRET": "w" * 32})
    assert derived != b"w" * 32 and len(derived) == 32  # derived, never the shared webhook secret itself
    assert request_id_key({"WEBHOOK_SECRET": "w" * 32, "TICKET_ID_SECRET": "k" * 32}) == b"k" * 32
    with pytest.raises(ConfigError, match="TICKET_ID_SECRET"):
        request_id_key({"WEBHOOK_SECRET": "w" * 32, "TICKET_ID_SECRET": "short"})
    ids = {request_id(key, "generic", "INC-1", "diagnose") for key in (derived, b"k" * 32)}
    assert len(ids) == 2 and commands.message_id("ticket", "generic", "inc-1", "diagnose") not in ids  # was the unkeyed hash
    assert request_id(derived, "generic", " INC-1 ", "diagnose") == request_id(derived, "generic", "inc-1", "diagnose")


def test_secret_setting_must_be_long_enough() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        webhook_secret({})
    with pytest.raises(ConfigError, match="at least 32"):
        webhook_secret({"WEBHOOK_SECRET": "short"})
    assert webhook_secret({"WEBHOOK_SECRET": "x" * 32}) == b"x" * 32


async def test_only_the_authentic_request_is_accepted(tmp_path: Path) -> None:
    intake, sender = make_intake(tmp_path)
    now = time.time()
    body = encode(payload())

    async def post(data: bytes, headers: dict[str, str]):
        return await post_ticket(data, headers, {}, intake=lambda: intake, secret=lambda: SECRET, now=lambda: now)

    valid = await post(body, signed_headers(body, at=now))
    wrong_secret = await post(body, signed_headers(body, secret=b"another-secret-0123456789abcdefghijkl", at=now))
    replayed = await post(body, signed_headers(body, at=now - 301))
    altered_body = body.replace(b"DESKTOP-1", b"LAPTOP-9")
    altered = await post(altered_body, signed_headers(body, at=now))
    assert [r.status for r in (valid, wrong_secret, replayed, altered)] == [202, 401, 401, 401]
    for refused in (wrong_secret, replayed, altered):
        assert refused.body == {"error": "unauthorized"}  # no detail leaked
    assert len(sender.sent) == 1
    assert len(await ticket_records(intake.audit)) == 1


async def test_unsigned_request_never_reaches_the_stores(tmp_path: Path) -> None:
    def no_intake():
        raise AssertionError("intake must not be built for an unauthenticated request")

    answer = await post_ticket(encode(payload()), {}, {}, intake=no_intake, secret=lambda: SECRET)
    assert answer.status == 401


async def test_missing_secret_setting_is_a_server_error_not_an_open_door(tmp_path: Path) -> None:
    def no_secret() -> bytes:
        return webhook_secret({})

    body = encode(payload())
    answer = await post_ticket(body, signed_headers(body), {}, intake=lambda: None, secret=no_secret)  # type: ignore[arg-type]
    assert answer.status == 500 and "not configured" in answer.body["error"]
