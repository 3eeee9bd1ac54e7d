"""Small helpers for the simulator's conformance tests: an HTTP client and a pager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from simulator import RunningSimulator

EVENTUAL = {"ConsistencyLevel": "eventual"}


def client(sim: RunningSimulator, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sim.base_url, headers=headers, timeout=30)


async def all_pages(
    http: httpx.AsyncClient, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow @odata.nextLink to the end. Returns (items, page documents)."""
    response = await http.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    pages = [response.json()]
    while "@odata.nextLink" in pages[-1]:
        link = pages[-1]["@odata.nextLink"]
        assert link.startswith("http://127.0.0.1:"), link  # absolute, as Graph sends it
        response = await http.get(link, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
    return [item for page in pages for item in page["value"]], pages


def assert_graph_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Graph's error shape, request-id header and body agreeing."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "innerError"}
    if code is not None:
        assert error["code"] == code, error
    assert error["message"]
    assert response.headers["request-id"] == error["innerError"]["request-id"]
    assert response.headers["client-request-id"]
    return error
