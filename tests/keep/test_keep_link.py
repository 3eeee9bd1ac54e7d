"""/api/keep/{token} as the Functions host calls it, against the simulator: a GET changes nothing, a POST keeps the
device (one audit record, a re-enable the worker carries out through its gates), refusals are plain 4xx pages
with one record each (POST only), and the next scan leaves a kept device alone (class kept)."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.keep import keep_link
from shared import bootstrap
from shared.graph import build_gateway
from shared.policy import Policy
from shared.queue import open_sqlite
from shared.scan import run_scan
from tests.keep.world import World, chain_intact, queued, records, set_env, start_world, work_queue

handler = keep_link.build().get_user_function()


@pytest.fixture
def world() -> Iterator[World]:
    yield from start_world()


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch, world: World):
    set_env(monkeypatch, world)
    yield world
    await bootstrap.close_shared()


async def call(method: str, token: str) -> func.HttpResponse:
    request = func.HttpRequest(
        method=method, url=f"https://janitor.example.net/api/keep/{token}", body=b"", route_params={"token": token}
    )
    return await handler(request)


def html(response: func.HttpResponse) -> str:
    return response.get_body().decode()


async def test_a_get_shows_the_device_what_happened_why_and_until_when_and_changes_nothing(env: World) -> None:
    world = env
    before = world.device()
    response = await call("GET", world.token())
    page = html(response)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "LAPTOP-ONLEAVE" in page and "disabled by entra-janitor on" in page and "Why" in page
    assert "Kept until" in page and '<form method="post">' in page and "<script" not in page.lower()
    assert response.headers["Referrer-Policy"] == "no-referrer" and "default-src 'none'" in response.headers[
        "Content-Security-Policy"]  # fmt: skip
    await call("GET", world.token())  # a mail scanner opening it twice
    assert await records() == [] and await queued() == 0
    assert world.device() == before and world.tenant.writes == []


async def test_a_post_keeps_the_device_and_the_worker_enables_it_again(env: World) -> None:
    world = env
    token = world.token()
    response = await call("POST", token)
    assert response.status_code == 200 and "You kept LAPTOP-ONLEAVE" in html(response)
    [keep] = await records(kind="keep")
    entry = keep.entry
    assert (entry.decision, entry.action, entry.device_object_id, entry.actor) == (
        "acted", "keep", world.laptop, world.owner.user_principal_name)  # fmt: skip
    kept_until = datetime.fromisoformat(entry.data["kept_until"])
    assert timedelta(days=59) < kept_until - datetime.now(UTC) <= timedelta(days=60)
    assert entry.data["requeued"]["action"] == "reenable" and await queued() == 1
    assert world.device()["accountEnabled"] is False  # nothing written by the page itself

    assert await work_queue() == 1
    device = world.device()
    assert device["accountEnabled"] is True and device["extensionAttributes"]["extensionAttribute15"] is None
    [decision] = await records(command_id=entry.command_id, kind="decision")
    assert (decision.entry.decision, decision.entry.action, decision.entry.data["undoes"]["run_id"]) == (
        "acted", "reenable", "run-leave")  # fmt: skip
    assert await chain_intact()

    again = await call("POST", token)  # the same link again: nothing new
    assert again.status_code == 200 and "You already kept" in html(again)
    assert len(await records(kind="keep")) == 1 and await queued() == 0

    # The next scan leaves the kept device alone although it has not signed in for 120 days.
    audit = bootstrap.audit_log()
    gateway = build_gateway()
    async with open_sqlite() as queue:
        summary = await run_scan(gateway, queue, audit, Policy(), now=world.tenant.now)
    await gateway.close()
    await audit.close()
    assert summary.findings["kept"] == 1
    scan_decisions = await records(run_id=summary.run_id, kind="decision")
    assert all(r.entry.device_object_id != world.laptop for r in scan_decisions)


@pytest.mark.parametrize("case", ["tampered", "expired", "another device", "not an owner", "malformed"])
async def test_a_link_that_grants_nothing_is_a_plain_4xx_and_only_the_refusal_is_recorded(env: World, case: str) -> None:
    world = env
    token = {
        "tampered": world.token()[:-5] + ("AAAAA" if not world.token().endswith("AAAAA") else "BBBBB"),
        "expired": world.token(expires=datetime.now(UTC) - timedelta(seconds=1)),
        "another device": world.token(device=world.desktop),  # the owner of the laptop, on someone else's desktop
        "not an owner": world.token(owner=world.other.id),
        "malformed": "not-a-token",
    }[case]
    before = [world.device(), world.device(world.desktop)]
    shown = await call("GET", token)
    assert 400 <= shown.status_code < 500 and "Nothing was changed." in html(shown) and "LAPTOP" not in html(shown)
    assert await records() == []
    refused = await call("POST", token)
    assert refused.status_code == shown.status_code and "Nothing was changed." in html(refused)
    [record] = await records()
    assert (record.entry.kind, record.entry.decision, record.entry.device_object_id) == ("keep", "blocked", None)
    assert await queued() == 0 and [world.device(), world.device(world.desktop)] == before
    assert world.tenant.writes == []


FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip


@FUZZ
@given(token=st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=90, max_size=106) | st.text(max_size=200),
       method=st.sampled_from(["GET", "POST"]))  # fmt: skip
def test_fuzzed_tokens_are_never_accepted_and_never_a_5xx(env: World, token: str, method: str) -> None:
    world = env
    response = asyncio.run(_fuzz_once(method, token))
    assert response.status_code in (403, 404, 410), (token, response.status_code)
    assert world.tenant.writes == []


async def _fuzz_once(method: str, token: str) -> func.HttpResponse:
    try:
        response = await call(method, token)
        kept = [r for r in await records(kind="keep") if r.entry.decision == "acted"]
        assert kept == [] and await queued() == 0  # 0 accepted forgeries
        return response
    finally:
        await bootstrap.close_shared()
