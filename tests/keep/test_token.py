"""The keep link's token: what it grants, and that nothing else is ever accepted (hypothesis)."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.errors import ConfigError
from shared.keep.links import links_from_settings
from shared.keep.token import TOKEN_CHARS, KeepTokenRefused, make_token, read_token, secret_from_settings

SECRET = b"keep-link-secret-0123456789abcdefghijklmnop"
DEVICE = "0b9e7c4e-1111-4222-8333-444455556666"
OWNER = "7c1d2e3f-aaaa-4bbb-8ccc-dddd0000eeee"
OTHER_DEVICE = "0b9e7c4e-1111-4222-8333-444455556667"
NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=30)
VALID = make_token(SECRET, DEVICE, OWNER, EXPIRES)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refusal(token: str, *, secret: bytes = SECRET, now: datetime = NOW) -> tuple[str, int]:
    with pytest.raises(KeepTokenRefused) as caught:
        read_token(secret, token, now)
    return caught.value.why, caught.value.status


def test_a_token_grants_its_device_and_owner_until_it_expires() -> None:
    granted = read_token(SECRET, VALID, NOW)
    assert (granted.device_object_id, granted.owner_id, granted.expires) == (DEVICE, OWNER, EXPIRES)
    assert len(VALID) == TOKEN_CHARS and set(VALID) <= set(string.ascii_letters + string.digits + "-_")
    assert refusal(VALID, now=EXPIRES) == ("expired", 410)


def test_a_token_for_another_device_or_owner_or_key_is_refused() -> None:
    raw = bytearray(base64.urlsafe_b64decode(VALID + "=="))
    raw[1:17] = bytes.fromhex(OTHER_DEVICE.replace("-", ""))  # the same MAC, another device
    moved = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert refusal(moved) == ("tampered", 403)
    assert refusal(VALID, secret=b"another-secret-0123456789abcdefghijklmno") == ("tampered", 403)
    later = bytearray(base64.urlsafe_b64decode(VALID + "=="))
    later[33:41] = int((EXPIRES + timedelta(days=365)).timestamp()).to_bytes(8, "big")  # a longer life
    assert refusal(base64.urlsafe_b64encode(bytes(later)).decode().rstrip("=")) == ("tampered", 403)


@pytest.mark.parametrize("token", ["", "x", VALID[:-1], VALID + "A", VALID + "=", VALID.replace("-", "+").replace("_", "/"),
                                   " " + VALID[1:], VALID[:-1] + "\u00e9", "../" + VALID[3:]])  # fmt: skip
def test_malformed_or_changed_tokens_are_refused(token: str) -> None:
    _why, status = refusal(token)
    assert status in (403, 404)  # a changed character may still decode: then the MAC refuses it


def test_a_non_canonical_encoding_of_a_valid_token_is_refused() -> None:
    last = VALID[-1]
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    twins = [VALID[:-1] + c for c in alphabet if c != last and base64.urlsafe_b64decode(VALID[:-1] + c + "==")
             == base64.urlsafe_b64decode(VALID + "==")]  # fmt: skip
    assert twins  # 73 bytes leave 2 spare bits in the last character
    assert all(refusal(twin) == ("malformed", 404) for twin in twins)


@FUZZ
@given(st.text(max_size=300) | st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=90, max_size=110))
@example("A" * TOKEN_CHARS)
@example(VALID.lower())
def test_no_arbitrary_text_is_ever_accepted(token: str) -> None:
    if token == VALID:
        return
    with pytest.raises(KeepTokenRefused) as caught:
        read_token(SECRET, token, NOW)
    assert caught.value.status in (403, 404, 410)


@FUZZ
@given(position=st.integers(0, TOKEN_CHARS - 1), char=st.sampled_from(string.ascii_letters + string.digits + "-_"))
def test_no_one_character_change_of_a_valid_token_is_accepted(position: int, char: str) -> None:
    forged = VALID[:position] + char + VALID[position + 1 :]
    if forged == VALID:
        return
    with pytest.raises(KeepTokenRefused):
        read_token(SECRET, forged, NOW)


@FUZZ
@given(body=st.binary(min_size=41, max_size=41), mac=st.binary(min_size=32, max_size=32))
def test_no_forged_body_and_mac_is_accepted(body: bytes, mac: bytes) -> None:
    forged = base64.urlsafe_b64encode(body + mac).decode().rstrip("=")
    with pytest.raises(KeepTokenRefused):
        read_token(SECRET, forged, NOW)


def test_the_secret_and_the_origin_come_from_settings() -> None:
    assert links_from_settings({}) is None
    assert links_from_settings({"KEEP_LINK_SECRET": SECRET.decode()}) is None  # no origin: no link
    links = links_from_settings({"KEEP_LINK_SECRET": SECRET.decode(), "PUBLIC_BASE_URL": "https://janitor.example.net/"})
    assert links is not None and links.base_url == "https://janitor.example.net"
    url = links.link(DEVICE, OWNER, NOW, 30)
    assert url.startswith("https://janitor.example.net/api/keep/")
    assert read_token(SECRET, url.rsplit("/", 1)[1], NOW).expires == EXPIRES
    with pytest.raises(ConfigError, match="KEEP_LINK_SECRET"):
        secret_from_settings({"KEEP_LINK_SECRET": "short"})
    with pytest.raises(ConfigError, match="unresolved Key Vault reference"):
        secret_from_settings({"KEEP_LINK_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/k)"})
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        links_from_settings({"KEEP_LINK_SECRET": SECRET.decode(), "PUBLIC_BASE_URL": "http://janitor.example.net"})
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        links_from_settings({"KEEP_LINK_SECRET": SECRET.decode(), "PUBLIC_BASE_URL": "https://janitor.example.net/api"})
    assert links_from_settings({"KEEP_LINK_SECRET": SECRET.decode(), "PUBLIC_BASE_URL": "http://127.0.0.1:8080"})
