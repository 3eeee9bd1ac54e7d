"""GET /devices over HTTP: paging, $top bounds, $select, $count and skip tokens."""

from __future__ import annotations

import pytest

from shared.models import DEVICE_SELECT
from simulator import RunningSimulator
from tests.simulator.helpers import EVENTUAL, all_pages, assert_graph_error, client


async def test_paging_returns_every_device_once(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        items, pages = await all_pages(http, "/devices", {"$top": "37", "$select": "id"})
    ids = [d["id"] for d in items]
    assert len(ids) == len(set(ids)) == simulator.tenant.device_count
    assert ids == simulator.tenant.object_ids()
    assert all(len(p["value"]) == 37 for p in pages[:-1]) and 0 < len(pages[-1]["value"]) <= 37
    assert all(set(d) == {"id"} for d in items)


async def test_default_page_size_is_100(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        response = await http.get("/devices")
    page = response.json()
    assert len(page["value"]) == 100 and "@odata.nextLink" in page
    assert page["@odata.context"].endswith("/$metadata#devices")
    assert "extensionAttributes" not in page["value"][0]  # returned only when selected


@pytest.mark.parametrize("top", ["0", "1000", "-1", "abc"])
async def test_top_outside_1_to_999_is_refused(simulator: RunningSimulator, top: str) -> None:
    async with client(simulator) as http:
        response = await http.get("/devices", params={"$top": top})
    error = assert_graph_error(response, 400)
    assert top in error["message"]


async def test_top_bounds_accepted(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        one = (await http.get("/devices", params={"$top": "1"})).json()
        most = (await http.get("/devices", params={"$top": "999"})).json()
    assert len(one["value"]) == 1
    assert len(most["value"]) == simulator.tenant.device_count and "@odata.nextLink" not in most


async def test_full_select_equals_the_tenant_json(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        items, _ = await all_pages(http, "/devices", {"$top": "999", "$select": ",".join(DEVICE_SELECT)})
    tenant = simulator.tenant
    assert items == [tenant.device_json(oid) for oid in tenant.object_ids()]
    assert all(set(d) == set(DEVICE_SELECT) for d in items)


async def test_partial_select_and_extra_properties(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    async with client(simulator) as http:
        partial = (await http.get("/devices", params={"$top": "50", "$select": "displayName,ID,extensionAttributes"})).json()
        extra = (await http.get("/devices", params={"$top": "5", "$select": ",".join([*DEVICE_SELECT, "model"])})).json()
        unknown = await http.get("/devices", params={"$select": "id,colour"})
    for d in partial["value"]:
        assert list(d) == ["id", "displayName", "extensionAttributes"]
        full = tenant.device_json(d["id"])
        assert full is not None and d["displayName"] == full["displayName"]
        assert d["extensionAttributes"] == full["extensionAttributes"]
    assert partial["@odata.context"].endswith("devices(displayName,id,extensionAttributes)")
    assert all(d["model"] is None and d["id"] for d in extra["value"])
    assert "colour" in assert_graph_error(unknown, 400)["message"]


async def test_count_needs_consistency_level(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        refused = await http.get("/devices", params={"$count": "true"})
        items, pages = await all_pages(http, "/devices", {"$count": "true", "$top": "150", "$select": "id"}, EVENTUAL)
        count_only = await http.get("/devices/$count", headers=EVENTUAL)
        count_refused = await http.get("/devices/$count")
    assert "ConsistencyLevel" in assert_graph_error(refused, 400)["message"]
    assert all(p["@odata.count"] == simulator.tenant.device_count == len(items) for p in pages)
    assert count_only.status_code == 200 and int(count_only.text) == simulator.tenant.device_count
    assert_graph_error(count_refused, 400)


async def test_skiptoken_is_bound_to_its_query(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        first = (await http.get("/devices", params={"$top": "10", "$filter": "accountEnabled eq true"})).json()
        link = first["@odata.nextLink"]
        assert "$skiptoken=" in link and "$filter=accountEnabled" in link.replace("%20", " ")
        tampered = await http.get(link.replace("accountEnabled%20eq%20true", "accountEnabled%20eq%20false"))
        garbage = await http.get("/devices", params={"$skiptoken": "not-a-token"})
        skip = await http.get("/devices", params={"$skip": "10"})
    assert "different query" in assert_graph_error(tampered, 400)["message"]
    assert_graph_error(garbage, 400)
    assert "nextLink" in assert_graph_error(skip, 400)["message"]


async def test_paging_is_stable_while_devices_are_deleted(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    before = tenant.object_ids()
    seen: list[str] = []
    async with client(simulator) as http:
        page = (await http.get("/devices", params={"$top": "100", "$select": "id"})).json()
        seen += [d["id"] for d in page["value"]]
        doomed = [before[5], before[150], before[-1]]  # one already served, two not yet
        for oid in doomed:
            tenant.delete_device(oid)
        while "@odata.nextLink" in page:
            page = (await http.get(page["@odata.nextLink"])).json()
            seen += [d["id"] for d in page["value"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == set(before) - set(doomed[1:])
    assert tenant.device_count == len(before) - 3


async def test_unknown_paths_and_versions(simulator: RunningSimulator) -> None:
    async with client(simulator) as http:
        segment = await http.get("/gadgets")
        beta = await http.get(simulator.base_url.replace("/v1.0", "/beta") + "/devices")
        method = await http.put("/devices")
    assert "gadgets" in assert_graph_error(segment, 400, "BadRequest")["message"]
    assert "v1.0" in assert_graph_error(beta, 404)["message"]
    assert_graph_error(method, 405)
