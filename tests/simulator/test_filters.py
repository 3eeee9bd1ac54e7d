"""$filter over HTTP: every supported form and combinations, checked against the tenant's own JSON;
advanced-query rules (ne/not/eq null/orderby+filter/$search need ConsistencyLevel + $count=true)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from simulator import RunningSimulator, Tenant
from tests.simulator.helpers import EVENTUAL, all_pages, assert_graph_error, client

Device = dict[str, Any]


def ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cases(tenant: Tenant) -> list[tuple[str, Callable[[Device], bool], bool]]:
    """(filter, the same test in Python, needs advanced query)."""
    cut = tenant.now - timedelta(days=90)
    recent = tenant.now - timedelta(days=20)
    sample = tenant.device_json(tenant.object_ids()[3])
    assert sample is not None
    signin = lambda d: ts(d["approximateLastSignInDateTime"])  # noqa: E731
    return [
        ("accountEnabled eq true", lambda d: d["accountEnabled"] is True, False),
        ("accountEnabled eq false", lambda d: d["accountEnabled"] is False, False),
        ("trustType eq 'ServerAd'", lambda d: d["trustType"] == "ServerAd", False),
        ("trustType eq 'workplace'", lambda d: d["trustType"] == "Workplace", False),  # case-insensitive
        ("operatingSystem eq 'Windows'", lambda d: d["operatingSystem"] == "Windows", False),
        ("operatingSystem eq 'iOS'", lambda d: d["operatingSystem"] == "iOS", False),
        (f"approximateLastSignInDateTime le {iso(cut)}", lambda d: signin(d) is not None and signin(d) <= cut, False),
        (f"approximateLastSignInDateTime ge {iso(recent)}", lambda d: signin(d) is not None and signin(d) >= recent, False),
        ("startsWith(displayName,'KIOSK-')", lambda d: d["displayName"].startswith("KIOSK-"), False),
        ("startswith(displayName,'desktop-')", lambda d: d["displayName"].startswith("DESKTOP-"), False),
        (f"displayName eq '{sample['displayName']}'", lambda d: d["displayName"] == sample["displayName"], False),
        (f"deviceId eq '{sample['deviceId']}'", lambda d: d["deviceId"] == sample["deviceId"], False),
        (f"id eq '{sample['id'].upper()}'", lambda d: d["id"] == sample["id"], False),
        ("trustType in ('AzureAd','Workplace')", lambda d: d["trustType"] in ("AzureAd", "Workplace"), False),
        (
            f"accountEnabled eq true and trustType eq 'AzureAd' and approximateLastSignInDateTime le {iso(cut)}",
            lambda d: d["accountEnabled"] and d["trustType"] == "AzureAd" and signin(d) is not None and signin(d) <= cut,
            False,
        ),
        (
            "(trustType eq 'ServerAd' or operatingSystem eq 'Android') and accountEnabled eq true",
            lambda d: (d["trustType"] == "ServerAd" or d["operatingSystem"] == "Android") and d["accountEnabled"],
            False,
        ),
        ("trustType ne 'AzureAd'", lambda d: d["trustType"] != "AzureAd", True),
        ("not(operatingSystem eq 'Windows')", lambda d: d["operatingSystem"] != "Windows", True),
        ("approximateLastSignInDateTime eq null", lambda d: d["approximateLastSignInDateTime"] is None, True),
        (
            "registrationDateTime eq null and trustType eq 'ServerAd'",
            lambda d: d["registrationDateTime"] is None and d["trustType"] == "ServerAd",
            True,
        ),
        (
            "extensionAttributes/extensionAttribute15 ne null",
            lambda d: d["extensionAttributes"]["extensionAttribute15"] is not None,
            True,
        ),
        (
            "startsWith(extensionAttributes/extensionAttribute15,'entra-janitor|disabled')",
            lambda d: (d["extensionAttributes"]["extensionAttribute15"] or "").startswith("entra-janitor|disabled"),
            True,
        ),
        ("physicalIds/any(p:startswith(p,'[ZTDID]'))", lambda d: any(p.startswith("[ZTDID]") for p in d["physicalIds"]), True),
        (
            "isManaged eq false and trustType eq 'AzureAd'",
            lambda d: d["isManaged"] is False and d["trustType"] == "AzureAd",
            False,
        ),
    ]


async def test_every_filter_form_matches_the_tenant(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    devices = [tenant.device_json(oid) for oid in tenant.object_ids()]
    async with client(simulator) as http:
        for text, python, advanced in cases(tenant):
            params = {"$filter": text, "$top": "53", "$select": "id"}
            headers = None
            if advanced:
                params["$count"] = "true"
                headers = EVENTUAL
            items, pages = await all_pages(http, "/devices", params, headers)
            expected = [d["id"] for d in devices if d is not None and python(d)]
            assert expected, text  # every case selects something in the small tenant
            assert [d["id"] for d in items] == expected, text
            if advanced:
                assert pages[0]["@odata.count"] == len(expected), text


@pytest.mark.parametrize(
    "text",
    [
        "trustType ne 'AzureAd'",
        "not(accountEnabled eq true)",
        "approximateLastSignInDateTime eq null",
        "extensionAttributes/extensionAttribute15 eq 'x'",
        "physicalIds/any(p:startswith(p,'[ZTDID]'))",
        "registrationDateTime le 2024-01-01T00:00:00Z",
    ],
)
async def test_advanced_forms_need_consistency_level_and_count(simulator: RunningSimulator, text: str) -> None:
    async with client(simulator) as http:
        bare = await http.get("/devices", params={"$filter": text})
        header_only = await http.get("/devices", params={"$filter": text}, headers=EVENTUAL)
        count_only_refused = await http.get("/devices", params={"$filter": text, "$count": "true"})
        accepted = await http.get("/devices", params={"$filter": text, "$count": "true"}, headers=EVENTUAL)
    for refused in (bare, header_only):
        error = assert_graph_error(refused, 400, "Request_UnsupportedQuery")
        assert "ConsistencyLevel: eventual" in error["message"] and "$count=true" in error["message"]
    assert_graph_error(count_only_refused, 400)
    assert accepted.status_code == 200 and "@odata.count" in accepted.json()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("accountEnabled eq 'true'", "incompatible types"),
        ("approximateLastSignInDateTime le '2024-01-01T00:00:00Z'", "incompatible types"),
        ("colour eq 'blue'", "colour"),
        ("trustType gt 'A'", "not supported"),
        ("physicalIds eq 'x'", "lambda"),
        ("displayName eq", "end of"),
        ("startsWith(displayName 'x')", "expected ','"),
        ("trustType eq 'AzureAd' and", "end of"),
    ],
)
async def test_bad_filters_say_what_is_wrong(simulator: RunningSimulator, text: str, words: str) -> None:
    async with client(simulator) as http:
        response = await http.get("/devices", params={"$filter": text, "$count": "true"}, headers=EVENTUAL)
    assert words in assert_graph_error(response, 400)["message"]


async def test_orderby_and_search(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    names = sorted((d["displayName"] for oid in tenant.object_ids() if (d := tenant.device_json(oid))), key=str.lower)
    async with client(simulator) as http:
        ordered, _ = await all_pages(http, "/devices", {"$orderby": "displayName", "$top": "70", "$select": "displayName"})
        refused = await http.get("/devices", params={"$orderby": "displayName", "$filter": "accountEnabled eq true"})
        found, pages = await all_pages(
            http, "/devices", {"$search": '"displayName:kiosk"', "$count": "true", "$select": "displayName"}, EVENTUAL
        )
        bad_search = await http.get("/devices", params={"$search": "kiosk", "$count": "true"}, headers=EVENTUAL)
    assert [d["displayName"] for d in ordered] == names
    assert_graph_error(refused, 400, "Request_UnsupportedQuery")
    assert found and all("KIOSK" in d["displayName"] for d in found)
    assert pages[0]["@odata.count"] == sum("kiosk" in n.lower() for n in names)
    assert_graph_error(bad_search, 400)


async def test_filtered_paging_survives_writes_between_pages(simulator: RunningSimulator) -> None:
    tenant = simulator.tenant
    async with client(simulator) as http:
        first = (await http.get("/devices", params={"$filter": "accountEnabled eq true", "$top": "20", "$select": "id"})).json()
        later = next(oid for oid in tenant.object_ids()[200:] if tenant.device_json(oid)["accountEnabled"])  # type: ignore[index]
        tenant.update_device(later, accountEnabled=False)
        rest, _ = await all_pages(http, first["@odata.nextLink"])
    ids = [d["id"] for d in first["value"] + rest]
    assert later not in ids and len(ids) == len(set(ids))
