"""POST /$batch: at most 20 inner requests, each routed, authorised, faulted and throttled on its own."""

from __future__ import annotations

from typing import Any

from simulator import Faults, Limits, RunningSimulator, Tenant, make_token
from tests.simulator.helpers import assert_graph_error, client

JSON = {"Content-Type": "application/json"}


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in document["responses"]}


def windows_ids(tenant: Tenant, n: int) -> list[str]:
    return tenant.truth.ids_with("windows", without=("hybrid", "disabled"))[:n]


async def test_batch_answers_each_inner_request(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    a, b = windows_ids(tenant, 2)
    requests = [
        {"id": "1", "method": "GET", "url": f"/devices/{a}?$select=id,displayName"},
        {"id": "2", "method": "PATCH", "url": f"/devices/{b}", "headers": JSON, "body": {"accountEnabled": False}},
        {"id": "3", "method": "GET", "url": "/devices/00000000-0000-4000-8000-000000000000"},
        {"id": "4", "method": "GET", "url": f"{simulator.base_url}/devices?$top=2&$select=id"},  # absolute URLs work too
    ]
    async with client(simulator) as http:
        response = await http.post("/$batch", json={"requests": requests})
    assert response.status_code == 200 and response.headers["request-id"]
    answers = by_id(response.json())
    assert answers["1"]["status"] == 200 and answers["1"]["body"]["id"] == a
    assert answers["2"]["status"] == 204 and "body" not in answers["2"]
    assert answers["3"]["status"] == 404 and answers["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert len(answers["4"]["body"]["value"]) == 2
    inner_ids = {r["headers"]["request-id"] for r in answers.values()}
    assert len(inner_ids) == 4 and response.headers["request-id"] not in inner_ids
    assert all(r["headers"]["client-request-id"] for r in answers.values())
    assert answers["3"]["body"]["error"]["innerError"]["request-id"] == answers["3"]["headers"]["request-id"]
    assert tenant.device_json(b)["accountEnabled"] is False  # type: ignore[index]
    assert simulator.stats.batches == 1 and simulator.stats.operations == 5 and simulator.stats.requests == 1


async def test_more_than_20_requests_is_refused(simulator: RunningSimulator) -> None:
    requests = [{"id": str(i), "method": "GET", "url": "/devices?$top=1"} for i in range(21)]
    async with client(simulator) as http:
        refused = await http.post("/$batch", json={"requests": requests})
        accepted = await http.post("/$batch", json={"requests": requests[:20]})
    assert "at most 20" in assert_graph_error(refused, 400)["message"]
    assert accepted.status_code == 200 and len(accepted.json()["responses"]) == 20


async def test_malformed_batches(simulator: RunningSimulator) -> None:
    oid = simulator.tenant.object_ids()[0]
    async with client(simulator) as http:
        for payload, words in [
            ({"requests": []}, "1 to 20"),
            ({"requests": [{"id": "1", "method": "GET"}]}, "id, method and url"),
            ({"requests": [{"id": "1", "method": "GET", "url": "/devices"}] * 2}, "unique"),
            ({"requests": [{"id": "1", "method": "GET", "url": "/devices", "dependsOn": ["2"]}]}, "earlier request"),
            (
                {"requests": [{"id": "1", "method": "PATCH", "url": f"/devices/{oid}", "body": {"accountEnabled": False}}]},
                "Content-Type",
            ),
        ]:
            assert words in assert_graph_error(await http.post("/$batch", json=payload), 400)["message"]
    assert simulator.tenant.write_attempts == []


async def test_failed_dependency_is_424_and_nested_batch_is_400(simulator: RunningSimulator) -> None:
    oid = simulator.tenant.object_ids()[0]
    requests = [
        {"id": "a", "method": "DELETE", "url": "/devices/00000000-0000-4000-8000-000000000000"},
        {"id": "b", "method": "DELETE", "url": f"/devices/{oid}", "dependsOn": ["a"]},
        {"id": "c", "method": "POST", "url": "/$batch", "headers": JSON, "body": {"requests": []}},
    ]
    async with client(simulator) as http:
        answers = by_id((await http.post("/$batch", json={"requests": requests})).json())
    assert (answers["a"]["status"], answers["b"]["status"], answers["c"]["status"]) == (404, 424, 400)
    assert simulator.tenant.device_json(oid) is not None


async def test_inner_requests_are_throttled_on_their_own(small_tenant: Tenant, start_simulator: Any) -> None:
    sim = await start_simulator(small_tenant, limits=Limits(resource_units_per_10s=None, write_budget=3, write_window_s=60))
    ids = windows_ids(small_tenant, 5)
    requests = [
        {
            "id": str(i),
            "method": "PATCH",
            "url": f"/devices/{oid}",
            "headers": JSON,
            "body": {"extensionAttributes": {"extensionAttribute15": "x"}},
        }
        for i, oid in enumerate(ids)
    ]
    requests.append({"id": "read", "method": "GET", "url": f"/devices/{ids[0]}"})
    async with client(sim) as http:
        response = await http.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    answers = by_id(response.json())
    statuses = [answers[str(i)]["status"] for i in range(5)]
    assert statuses == [204, 204, 204, 429, 429] and answers["read"]["status"] == 200
    throttled = answers["3"]
    assert int(throttled["headers"]["Retry-After"]) >= 59
    assert throttled["body"]["error"]["code"] == "TooManyRequests" and "write budget" in throttled["body"]["error"]["message"]
    assert sim.stats.throttled == 2 and len(small_tenant.writes) == 3
    assert [w.status for w in small_tenant.write_attempts] == [204, 204, 204]  # throttled requests never reach the handler


async def test_injected_storm_hits_matching_inner_requests(small_tenant: Tenant, start_simulator: Any) -> None:
    sim = await start_simulator(small_tenant, faults=Faults(throttle_next=2, match="^PATCH ", storm_retry_after=3))
    ids = windows_ids(small_tenant, 3)
    requests = [
        {
            "id": f"p{i}",
            "method": "PATCH",
            "url": f"/devices/{oid}",
            "headers": JSON,
            "body": {"extensionAttributes": {"extensionAttribute2": "y"}},
        }
        for i, oid in enumerate(ids)
    ]
    requests.insert(0, {"id": "g", "method": "GET", "url": "/devices?$top=1"})
    async with client(sim) as http:
        answers = by_id((await http.post("/$batch", json={"requests": requests})).json())
    assert [answers[k]["status"] for k in ("g", "p0", "p1", "p2")] == [200, 429, 429, 204]
    assert answers["p0"]["headers"]["Retry-After"] == "3"


async def test_response_order_is_shuffled_unless_asked(small_tenant: Tenant, start_simulator: Any) -> None:
    requests = [{"id": str(i), "method": "GET", "url": "/devices?$top=1&$select=id"} for i in range(20)]
    shuffled = await start_simulator(small_tenant)
    ordered = await start_simulator(small_tenant, faults=Faults(batch_order="request"))
    async with client(shuffled) as a, client(ordered) as b:
        first = [r["id"] for r in (await a.post("/$batch", json={"requests": requests})).json()["responses"]]
        second = [r["id"] for r in (await b.post("/$batch", json={"requests": requests})).json()["responses"]]
    assert sorted(first, key=int) == second == [str(i) for i in range(20)] and first != second


async def test_inner_requests_need_their_own_permissions(simulator: RunningSimulator) -> None:
    oid = simulator.tenant.object_ids()[0]
    token = make_token(["Device.Read.All"])
    requests = [{"id": "r", "method": "GET", "url": f"/devices/{oid}"}, {"id": "w", "method": "DELETE", "url": f"/devices/{oid}"}]
    async with client(simulator, Authorization=f"Bearer {token}") as http:
        answers = by_id((await http.post("/$batch", json={"requests": requests})).json())
    assert answers["r"]["status"] == 200 and answers["w"]["status"] == 403
    assert "Device.ReadWrite.All" in answers["w"]["body"]["error"]["message"]
