"""Jira and ServiceNow samples end to end against the simulator: webhook -> queue -> worker -> status -> callback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
import typer
from aiohttp import web
from typer.testing import CliRunner

from functions.tickets import ticket_callbacks, ticket_intake, ticket_status
from janitor_cli import diagnose as diagnose_cli
from shared import tags
from shared.policy import Policy
from shared.queue import open_sqlite
from shared.tickets import verify
from shared.worker import drain, open_worker
from simulator import SimulatorThread, Tenant
from tests.diagnosis.fakes import TENANT_ID, fixture
from tests.tickets.helpers import SECRET, sample, signed_headers

post_handler = ticket_intake.build().get_user_function()
get_handler = ticket_status.build().get_user_function()
callbacks_handler = ticket_callbacks.build().get_user_function()


class World:
    def __init__(self, sim: SimulatorThread, tenant: Tenant) -> None:
        self.sim, self.tenant = sim, tenant
        now = tenant.now
        self.megan = tenant.users[3]
        self.prt = tenant.add_device(
            display_name="DESKTOP-PRT0001",
            expected_class="healthy",
            owner=self.megan.id,
            last_sign_in=now - timedelta(days=1),
            registered_at=now - timedelta(days=200),
        )
        disabled_tag = tags.Tag("disabled", now - timedelta(days=3), "stale", "run-7").render()
        self.gone = tenant.add_device(
            display_name="DESKTOP-GONE007",
            expected_class="healthy",
            account_enabled=False,
            last_sign_in=now - timedelta(days=120),
            registered_at=now - timedelta(days=900),
            extension_attributes={"extensionAttribute15": disabled_tag},
        )

    def local(self, name: str, object_id: str, fixture_device_id: str) -> str:
        device_id = self.tenant.device_json(object_id)["deviceId"]
        return fixture(name).replace(TENANT_ID, self.tenant.tenant_id).replace(fixture_device_id, device_id)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    tenant = Tenant.generate(devices=200, seed=31)
    with SimulatorThread(tenant) as sim:
        yield World(sim, tenant)


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, str | None]] = []
        self.url = ""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        rec.received.append((await request.read(), request.headers.get("X-Janitor-Signature")))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    for name, value in {
        "GRAPH_BASE_URL": world.sim.base_url,
        "GRAPH_AUTH": "anonymous",
        "WEBHOOK_SECRET": SECRET.decode(),
        "CALLBACK_ALLOWLIST": "127.0.0.1",
        "AZURE_TENANT_ID": world.tenant.tenant_id,
    }.items():
        monkeypatch.setenv(name, value)


async def submit(data: dict[str, Any], source: str | None = None) -> func.HttpResponse:
    body = json.dumps(data).encode()
    request = func.HttpRequest(
        method="POST",
        url="https://janitor.example.net/api/tickets",
        body=body,
        headers=signed_headers(body),
        params={"source": source} if source else {},
    )
    return await post_handler(request)


async def work_queue() -> int:
    worker = open_worker(policy=Policy())
    queue = open_sqlite()
    try:
        stats = await drain(queue, worker, until_empty=True)
    finally:
        await queue.close()
        for port in (worker.graph, worker.audit, worker.durable_budget):
            close = getattr(port, "close", None)
            if close is not None:
                await close()
    return stats.received


async def status_of(request_id: str) -> dict[str, Any]:
    request = func.HttpRequest(
        method="GET",
        url=f"https://janitor.example.net/api/tickets/{request_id}",
        body=b"",
        route_params={"request_id": request_id},
    )
    response = await get_handler(request)
    assert response.status_code == 200
    return json.loads(response.get_body())


async def test_jira_issue_webhook_end_to_end(world: World, env: None, receiver: Receiver) -> None:
    data = sample("jira_issue_created.json")
    dsregcmd = world.local("win11_prt_missing.txt", world.prt, "1e3a5c7e-9b1d-4f3a-8c5e-7b9d1f3a5c7e")
    data["issue"]["fields"]["customfield_10053"]["content"][0]["content"][0]["text"] = dsregcmd
    data["issue"]["fields"]["customfield_10052"] = world.megan.user_principal_name
    response = await submit(data)
    assert response.status_code == 202, response.get_body()
    request_id = json.loads(response.get_body())["request_id"]
    assert (await status_of(request_id))["state"] == "queued"

    assert await work_queue() == 1
    status = await status_of(request_id)
    assert status["state"] == "completed" and status["decision"] == "acted" and status["source"] == "jira"
    assert status["ticket_id"] == "IT-4711" and status["device"]["id"] == world.prt
    assert status["diagnosis"]["stage"] == 5 and "Primary Refresh Token" in status["diagnosis"]["summary"]
    assert status["diagnosis"]["error_codes"][0]["code"] == "0xc000006d"

    again = await submit(data)  # the same issue delivered twice by Jira
    assert json.loads(again.get_body())["request_id"] == request_id
    assert await work_queue() == 0  # nothing new was queued
    assert receiver.received == []  # no callback was asked for


async def test_servicenow_message_end_to_end_with_signed_callback(world: World, env: None, receiver: Receiver) -> None:
    data = sample("servicenow_incident.json")
    data["u_dsregcmd"] = world.local("win11_device_deleted.txt", world.gone, "7d9f1b3d-5f7a-4c9e-b1d3-f5a7c9e1b3d5")
    data["u_callback_url"] = f"{receiver.url}/servicenow/result"
    data["u_affected_user"] = None
    response = await submit(data, source="servicenow")
    assert response.status_code == 202, response.get_body()
    request_id = json.loads(response.get_body())["request_id"]

    assert await work_queue() == 1
    status = await status_of(request_id)
    assert status["state"] == "completed" and status["ticket_id"] == "INC0010023"
    diagnosis = status["diagnosis"]
    assert diagnosis["stage"] == 3 and "disabled by entra-janitor" in diagnosis["summary"] and not diagnosis["recommends_rejoin"]

    await callbacks_handler(func.TimerRequest(past_due=False))
    [(body, header)] = receiver.received
    assert verify(SECRET, header, body, now=time.time())
    delivered = json.loads(body)
    assert delivered["request_id"] == request_id and delivered["diagnosis"]["stage"] == 3
    await callbacks_handler(func.TimerRequest(past_due=False))
    assert len(receiver.received) == 1  # delivered once
    assert (await status_of(request_id))["callback"] == {"attempts": 1, "delivered": True, "last_status": 204}


def test_janitor_ticket_cli_runs_the_local_pipeline(world: World, env: None, tmp_path: Path) -> None:
    payload_file = tmp_path / "ticket.json"
    payload_file.write_text(
        json.dumps(
            {
                "ticket_id": "CLI-1",
                "device": "LT-0977",
                "action": "diagnose",
                "requested_by": "ops@contoso.com",
                "dsregcmd": fixture("win10_hybrid_discovery_failed.txt"),
            }
        )
    )
    app = typer.Typer()
    diagnose_cli.register(app)
    result = CliRunner().invoke(app, ["ticket", str(payload_file), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["state"] == "completed" and doc["diagnosis"]["stage"] == 4 and doc["duplicate"] is False
    again = CliRunner().invoke(app, ["ticket", str(payload_file)])
    assert again.exit_code == 0 and "already submitted" in again.stdout and "stage 4" in again.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"ticket_id": "x"}')
    refused = CliRunner().invoke(app, ["ticket", str(bad)])
    assert refused.exit_code == 2 and "device: is required" in refused.output
