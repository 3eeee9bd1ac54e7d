"""Ticket actions reenable and restore through the webhook (signature, idempotency, the worker's gates), against the
simulator: a device entra-janitor disabled is enabled again; a cloud device is restored from deleted items; a
hybrid one is refused with the on-premises steps; a device nobody deleted is a 400 naming the field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import azure.functions as func
import msgspec
import pytest

from functions.tickets import ticket_intake, ticket_status
from shared import bootstrap, tags
from shared.commands import RemediationCommand
from shared.models import Device
from shared.worker import records as worker_records
from simulator import SimulatorThread, Tenant
from tests.keep.world import ENFORCE, work_queue
from tests.tickets.helpers import SECRET, signed_headers

post_handler = ticket_intake.build().get_user_function()
get_handler = ticket_status.build().get_user_function()


class World:
    def __init__(self, sim: SimulatorThread, tenant: Tenant) -> None:
        self.sim, self.tenant = sim, tenant
        now = tenant.now
        tag = tags.Tag("disabled", now - timedelta(days=5), "stale", "run-may").render()
        self.disabled = tenant.add_device(
            display_name="LAPTOP-DISABLED", expected_class="healthy", account_enabled=False,
            last_sign_in=now - timedelta(days=100), registered_at=now - timedelta(days=600),
            extension_attributes={"extensionAttribute15": tag},
        )  # fmt: skip
        self.cloud = tenant.add_device(
            display_name="LAPTOP-DELETED", expected_class="healthy", last_sign_in=now - timedelta(days=3),
            registered_at=now - timedelta(days=400),
        )  # fmt: skip
        self.hybrid = tenant.add_device(
            display_name="DESKTOP-HYBRID", expected_class="healthy", trust_type="ServerAd",
            last_sign_in=now - timedelta(days=200), registered_at=now - timedelta(days=900),
        )  # fmt: skip


@pytest.fixture
def world() -> Iterator[World]:
    tenant = Tenant.generate(devices=150, seed=37)
    with SimulatorThread(tenant) as sim:
        yield World(sim, tenant)


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch, world: World) -> AsyncIterator[World]:
    monkeypatch.setenv("GRAPH_BASE_URL", world.sim.base_url)
    monkeypatch.setenv("GRAPH_AUTH", "anonymous")
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET.decode())
    yield world
    await bootstrap.close_shared()


async def submit(ticket: str, device: Any, action: str) -> func.HttpResponse:
    body = json.dumps({"ticket_id": ticket, "device": device, "action": action, "requested_by": "helpdesk@contoso.com"})
    request = func.HttpRequest(method="POST", url="https://janitor.example.net/api/tickets", body=body.encode(),
                               headers=signed_headers(body.encode()))  # fmt: skip
    return await post_handler(request)


async def status(response: func.HttpResponse) -> dict[str, Any]:
    rid = json.loads(response.get_body())["request_id"]
    request = func.HttpRequest(method="GET", url=f"https://janitor.example.net/api/tickets/{rid}", body=b"",
                               route_params={"request_id": rid})  # fmt: skip
    return json.loads((await get_handler(request)).get_body())


async def deleted_by_the_worker(world: World, object_id: str) -> None:
    """What the worker records before it deletes a device (the intent with its snapshot), then the delete."""
    device = msgspec.convert(world.tenant.device_json(object_id), Device)
    command = RemediationCommand(
        command_id=f"cmd-delete-{object_id[:8]}", run_id="run-june", trigger="nightly", device_object_id=object_id,
        device_id=device.device_id, display_name=device.display_name, device_class="expired_disabled",
        proposed_action="delete", policy_hash="t", created_at=world.tenant.now,
    )  # fmt: skip
    snapshot = worker_records.delete_snapshot(device, [], [])
    audit = bootstrap.audit_log()
    await audit.append(worker_records.intent_entry(command, "delete", [], [], device, {"snapshot": snapshot}))
    await audit.close()
    world.tenant.delete_device(object_id)


async def test_a_reenable_ticket_enables_a_device_entra_janitor_disabled(env: World) -> None:
    response = await submit("INC-1", {"name": "LAPTOP-DISABLED"}, "reenable")
    assert response.status_code == 202, response.get_body()
    again = await submit("INC-1", {"name": "LAPTOP-DISABLED"}, "reenable")  # the same ticket twice: queued once
    assert json.loads(again.get_body())["request_id"] == json.loads(response.get_body())["request_id"]
    assert await work_queue(ENFORCE) == 1
    device = env.tenant.device_json(env.disabled)
    assert device["accountEnabled"] is True and device["extensionAttributes"]["extensionAttribute15"] is None
    done = await status(response)
    assert (done["state"], done["decision"], done["action"]) == ("completed", "acted", "reenable")


async def test_a_restore_ticket_brings_a_deleted_cloud_device_back(env: World) -> None:
    await deleted_by_the_worker(env, env.cloud)
    response = await submit("INC-2", "LAPTOP-DELETED", "restore")  # by name: found in the audit log
    assert response.status_code == 202, response.get_body()
    assert await work_queue(ENFORCE) == 1
    restored = env.tenant.device_json(env.cloud)
    assert restored is not None and restored["isCompliant"] is False
    assert (await status(response))["decision"] == "acted"


async def test_a_restore_ticket_for_a_hybrid_device_is_refused_with_the_ad_steps(env: World) -> None:
    await deleted_by_the_worker(env, env.hybrid)
    response = await submit("INC-3", {"id": env.hybrid}, "restore")
    assert response.status_code == 202, response.get_body()
    assert await work_queue(ENFORCE) == 1
    done = await status(response)
    assert done["decision"] == "skipped" and "not restorable in Entra" in done["reason"]
    assert "Active Directory Recycle Bin" in done["reason"] and env.tenant.device_json(env.hybrid) is None
    assert [w for w in env.tenant.writes if w.method == "POST"] == []


async def test_a_restore_ticket_for_a_device_nobody_deleted_is_a_400(env: World) -> None:
    env.tenant.delete_device(env.hybrid)  # deleted by an admin, hybrid: in neither the audit log nor deleted items
    response = await submit("INC-4", {"id": env.hybrid}, "restore")
    assert response.status_code == 400
    assert "deleted items" in response.get_body().decode()
