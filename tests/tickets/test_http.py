"""The HTTP functions called directly with func.HttpRequest, wired from settings to a simulated tenant."""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.tickets import ticket_intake, ticket_status
from shared.audit import SqliteAuditLog
from shared.ports import AuditQuery
from shared.queue import open_sqlite
from shared.tickets import ACTIONS
from simulator import SimulatorThread, Tenant
from tests.tickets.helpers import SECRET, encode, payload, signed_headers

post_handler = ticket_intake.build().get_user_function()
get_handler = ticket_status.build().get_user_function()


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorThread]:
    tenant = Tenant.generate(devices=150, seed=21)
    tenant.add_device(display_name="DESKTOP-1", expected_class="healthy", last_sign_in=tenant.now, registered_at=tenant.now)
    with SimulatorThread(tenant) as sim:
        yield sim


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, simulator: SimulatorThread) -> dict[str, str]:
    values = {
        "GRAPH_BASE_URL": simulator.base_url,
        "GRAPH_AUTH": "anonymous",
        "WEBHOOK_SECRET": SECRET.decode(),
        "CALLBACK_ALLOWLIST": "hooks.example.com",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def post(body: bytes, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST",
        url="https://janitor.example.net/api/tickets",
        body=body,
        headers=signed_headers(body) if headers is None else headers,
        params=params or {},
    )


def get(request_id: str) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET",
        url=f"https://janitor.example.net/api/tickets/{request_id}",
        body=b"",
        route_params={"request_id": request_id},
    )


def answer(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


async def nothing_queued_or_recorded() -> None:
    queue = open_sqlite()
    try:
        assert (await queue.receive(max_messages=5)) == []
    finally:
        await queue.close()
    audit = SqliteAuditLog_from_env()
    try:
        assert [r async for r in audit.iter_records(AuditQuery(kind="ticket"))] == []
    finally:
        await audit.close()


def SqliteAuditLog_from_env() -> SqliteAuditLog:
    from shared import bootstrap

    return bootstrap.audit_log()  # type: ignore[return-value]


async def test_accept_then_status(env: dict[str, str]) -> None:
    response = await post_handler(post(encode(payload())))
    assert response.status_code == 202
    body = answer(response)
    assert set(body) == {"request_id", "status_url"}
    assert body["status_url"] == f"https://janitor.example.net/api/tickets/{body['request_id']}"
    status = await get_handler(get(body["request_id"]))
    assert status.status_code == 200 and answer(status)["state"] == "queued"
    again = await post_handler(post(encode(payload())))
    assert again.status_code == 202 and answer(again) == body  # resubmission: same answer
    queue = open_sqlite()
    try:
        assert len(await queue.receive(max_messages=5)) == 1  # and only one command
    finally:
        await queue.close()


async def test_status_of_unknown_or_malformed_ids(env: dict[str, str]) -> None:
    for rid in ("0" * 32, "not-an-id", "../../etc/passwd"):
        response = await get_handler(get(rid))
        assert response.status_code == 404 and answer(response)["error"]


async def test_oversized_body_is_413_before_anything_else(env: dict[str, str]) -> None:
    response = await post_handler(post(b"{" + b" " * (256 * 1024 + 1) + b"}", headers={}))
    assert response.status_code == 413
    await nothing_queued_or_recorded()


async def test_signature_failures_are_401_without_detail(env: dict[str, str]) -> None:
    body = encode(payload())
    for headers in ({}, {"X-Janitor-Signature": "t=1,v1=" + "0" * 64}, signed_headers(body, secret=b"x" * 40)):
        response = await post_handler(post(body, headers=headers))
        assert response.status_code == 401 and answer(response) == {"error": "unauthorized"}
    await nothing_queued_or_recorded()


async def test_bad_source_and_unknown_device_for_delete(env: dict[str, str]) -> None:
    response = await post_handler(post(encode(payload()), params={"source": "zendesk"}))
    assert response.status_code == 400 and "source" in answer(response)["error"]
    response = await post_handler(post(encode(payload(action="delete", device="NO-SUCH-PC"))))
    assert response.status_code == 400 and "matches no device" in answer(response)["error"]
    await nothing_queued_or_recorded()


# --------------------------------------------------------------------------- property: bad payloads

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
not_a_string = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.lists(json_scalars, max_size=2)
    | st.dictionaries(st.text(max_size=5), json_scalars, max_size=2)
)
blank_or_wrong = st.sampled_from([None, "", "   ", "a\nb", "x" * 300]) | not_a_string
bad_device = blank_or_wrong | st.sampled_from([{}, {"name": "a", "id": "b"}, {"id": "nope"}, {"deviceId": "123"}, {"name": ""}])
bad_action = st.text(max_size=15).filter(lambda a: a.strip().lower() not in ACTIONS) | not_a_string
bad_callback = st.builds(
    "https://{}/cb".format, st.text(string.ascii_lowercase, min_size=1, max_size=12).map(lambda s: s + ".evil.net")
) | st.sampled_from(
    [
        "http://hooks.example.com/x",
        "https://169.254.169.254/",
        "https://user:pw@hooks.example.com/",
        "not a url",
        "https://[::1]/",
    ]
)


@st.composite
def bad_payloads(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["not_object", "bytes", "field", "action", "callback", "dsregcmd", "destructive_unknown"]))
    if kind == "not_object":
        return json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict)))).encode()
    if kind == "bytes":
        raw = draw(st.binary(max_size=200))
        try:
            if isinstance(json.loads(raw), dict):
                raw = b"\xff" + raw  # make sure it is not accidentally a JSON object
        except ValueError:
            pass
        return raw
    body = payload(**draw(st.dictionaries(st.text(max_size=6).filter(lambda k: k not in payload()), json_values, max_size=3)))
    if kind == "field":
        name = draw(st.sampled_from(["ticket_id", "device", "requested_by"]))
        value = draw(
            bad_device if name == "device" else blank_or_wrong.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))
        )
        if value is None and draw(st.booleans()):
            body.pop(name)
        else:
            body[name] = value
    elif kind == "action":
        body["action"] = draw(bad_action)
    elif kind == "callback":
        body["callback_url"] = draw(bad_callback)
    elif kind == "dsregcmd":
        body["dsregcmd"] = draw(
            st.text(min_size=1, max_size=200).filter(lambda t: ":" not in t) | not_a_string.filter(lambda v: v not in (None, ""))
        )
    else:
        body.update(
            action=draw(st.sampled_from(["disable", "delete", "notify"])),
            device="NO-SUCH-" + draw(st.text(string.digits, min_size=1, max_size=6)),
        )
    return json.dumps(body).encode()


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for every example of a property test (the webhook's clients are reused across requests)."""
    with asyncio.Runner() as loop:
        yield loop


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bad_payloads())
def test_bad_payloads_always_get_4xx_with_a_message_and_queue_nothing(
    env: dict[str, str], runner: asyncio.Runner, body: bytes
) -> None:
    response = runner.run(post_handler(post(body)))
    assert 400 <= response.status_code < 500, (response.status_code, body[:200])
    assert answer(response)["error"]
    runner.run(nothing_queued_or_recorded())
