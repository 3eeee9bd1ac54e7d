"""A loopback stand-in for the few Graph endpoints the grant script uses (service principals, app role
assignments), keeping assignments in memory and recording every request. Serves one test, then stops."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from shared.graph.permissions import ALL_PERMISSIONS

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_SP = "graph-service-principal"
PAGE = 2  # small pages, so the script must follow @odata.nextLink


@dataclass
class FakeDirectory:
    identity_id: str = "11111111-2222-3333-4444-555555555555"
    identity_app_id: str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    roles: dict[str, str] = field(default_factory=dict)  # permission -> appRole id
    assignments: list[dict[str, str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        for name in (*ALL_PERMISSIONS, "Directory.Read.All", "Device.ReadWrite.All"):
            self.roles.setdefault(name, str(uuid.uuid5(uuid.NAMESPACE_URL, name)))

    def assign(self, permission: str) -> None:
        self.assignments.append(
            {"id": uuid.uuid4().hex, "principalId": self.identity_id, "resourceId": GRAPH_SP, "appRoleId": self.roles[permission]}
        )

    def held(self) -> set[str]:
        by_id = {v: k for k, v in self.roles.items()}
        return {by_id[a["appRoleId"]] for a in self.assignments}

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]


def _handler(directory: FakeDirectory) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: object | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path).removeprefix("/v1.0")
            directory.requests.append((method, path))
            me = directory.identity_id
            if method == "GET" and path == f"/servicePrincipals(appId='{GRAPH_APP_ID}')":
                roles = [{"id": i, "value": n, "allowedMemberTypes": ["Application"]} for n, i in directory.roles.items()]
                roles.append({"id": "delegated-only", "value": "Delegated.Only", "allowedMemberTypes": ["User"]})
                return self._send(200, {"id": GRAPH_SP, "appRoles": roles})
            by_app_id = f"/servicePrincipals(appId='{directory.identity_app_id}')"
            if method == "GET" and path in (f"/servicePrincipals/{me}", by_app_id):
                return self._send(200, {"id": me, "appId": directory.identity_app_id, "displayName": "id-janitor-test"})
            if path == f"/servicePrincipals/{me}/appRoleAssignments":
                if method == "GET":
                    start = int(dict(p.split("=") for p in parts.query.split("&") if "=" in p).get("skip", 0))
                    page = directory.assignments[start : start + PAGE]
                    body: dict[str, object] = {"value": page}
                    if start + PAGE < len(directory.assignments):
                        body["@odata.nextLink"] = f"{directory.base_url}{path}?skip={start + PAGE}"
                    return self._send(200, body)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if any(a["appRoleId"] == request["appRoleId"] for a in directory.assignments):
                    return self._send(400, {"error": {"message": "Permission being assigned already exists on the object"}})
                record = {"id": uuid.uuid4().hex, **request}
                directory.assignments.append(record)
                return self._send(201, record)
            match = re.fullmatch(rf"/servicePrincipals/{me}/appRoleAssignments/(\w+)", path)
            if method == "DELETE" and match:
                before = len(directory.assignments)
                directory.assignments = [a for a in directory.assignments if a["id"] != match.group(1)]
                return self._send(204 if len(directory.assignments) < before else 404)
            return self._send(404, {"error": {"message": f"no route {method} {path}"}})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@contextmanager
def fake_graph_admin() -> Iterator[FakeDirectory]:
    directory = FakeDirectory()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(directory))
    directory.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1.0"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield directory
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
