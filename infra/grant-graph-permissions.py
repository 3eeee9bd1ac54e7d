#!/usr/bin/env python3
"""Grant the app's managed identity exactly the Microsoft Graph application permissions its policy needs.

The needed set is derived from the policy (shared.doctor.permissions, which reads the endpoint table in
shared.graph.permissions): a report-only policy gets read permissions only. Safe to run twice: existing
assignments are kept and reported, only missing ones are added. `--dry-run` prints the plan and changes
nothing; without --principal-id / --client-id it needs no sign-in and prints the plan from the policy alone.

Run it as a Privileged Role Administrator (or Global Administrator), signed in with `az login`:

    .venv/bin/python infra/grant-graph-permissions.py --principal-id "$AZURE_MANAGED_IDENTITY_PRINCIPAL_ID" \
        --policy policy.yaml --dry-run
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: `shared` is importable

import httpx

from shared.doctor.permissions import needed_permissions, optional_permissions
from shared.policy import PolicyError, load_policy
from shared.settings import is_loopback_host

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's appId, the same in every tenant
GRAPH_URL = "https://graph.microsoft.com/v1.0"
ADMIN_HINT = (
    "sign in (az login) as a Privileged Role Administrator or Global Administrator: granting application "
    "permissions needs AppRoleAssignment.ReadWrite.All and Application.Read.All"
)


class GrantError(Exception):
    """Something the person running the script must fix; the message says what."""


@dataclass
class Plan:
    needed: dict[str, tuple[str, ...]]
    optional: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kept when held; never "extra"
    granted: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)


class Graph:
    """The handful of Graph calls the script makes, over httpx with a bearer token (none for a loopback URL)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(headers=headers, timeout=30.0)

    def check(self, response: httpx.Response, doing: str) -> httpx.Response:
        if response.status_code in (401, 403):
            raise GrantError(f"Graph refused to {doing} ({response.status_code}): {ADMIN_HINT}")
        if response.status_code >= 400:
            raise GrantError(f"Graph could not {doing} ({response.status_code}): {_error_message(response)}")
        return response

    def get(self, path: str, doing: str) -> dict[str, Any]:
        return self.check(self.http.get(f"{self.base_url}{path}"), doing).json()

    def pages(self, path: str, doing: str) -> Iterator[dict[str, Any]]:
        url: str | None = f"{self.base_url}{path}"
        while url:
            body = self.check(self.http.get(url), doing).json()
            yield from body.get("value", [])
            url = body.get("@odata.nextLink")

    def post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        """Unchecked: the caller tells "already exists" (fine) from a real failure."""
        return self.http.post(f"{self.base_url}{path}", json=body)

    def delete(self, path: str, doing: str) -> None:
        response = self.http.delete(f"{self.base_url}{path}")
        if response.status_code != 404:  # already gone is fine
            self.check(response, doing)


def _error_message(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


def find_principal(graph: Graph, principal_id: str | None, client_id: str | None) -> dict[str, Any]:
    select = "?$select=id,appId,displayName"
    if principal_id:
        return graph.get(f"/servicePrincipals/{quote(principal_id)}{select}", "read the managed identity's service principal")
    return graph.get(f"/servicePrincipals(appId='{quote(client_id or '')}'){select}", "find the managed identity by client id")


def app_roles(graph: Graph) -> dict[str, str]:
    """Microsoft Graph's application permissions: name -> appRole id."""
    sp = graph.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')?$select=id,appRoles", "read Microsoft Graph's app roles")
    roles = {r["value"]: r["id"] for r in sp.get("appRoles", []) if "Application" in r.get("allowedMemberTypes", [])}
    return {"__graph_sp_id__": sp["id"], **roles}


def apply(graph: Graph, principal: Mapping[str, Any], plan: Plan, *, dry_run: bool, revoke_extra: bool) -> Plan:
    roles = app_roles(graph)
    graph_sp = roles.pop("__graph_sp_id__")
    by_id = {role_id: name for name, role_id in roles.items()}
    unknown = [p for p in plan.needed if p not in roles]
    if unknown:
        raise GrantError(f"Microsoft Graph has no application permission named {', '.join(unknown)}")
    pid = principal["id"]
    assignments = [
        a for a in graph.pages(f"/servicePrincipals/{pid}/appRoleAssignments", "list the identity's permissions")
        if a.get("resourceId") == graph_sp
    ]  # fmt: skip
    held = {by_id.get(a["appRoleId"], a["appRoleId"]): a for a in assignments}
    for permission in plan.needed:
        if permission in held:
            plan.already.append(permission)
            continue
        if not dry_run:
            body = {"principalId": pid, "resourceId": graph_sp, "appRoleId": roles[permission]}
            response = graph.post(f"/servicePrincipals/{pid}/appRoleAssignments", body)
            if response.status_code == 400 and "already exists" in _error_message(response).lower():
                plan.already.append(permission)  # granted meanwhile (a concurrent run): nothing to do
                continue
            graph.check(response, f"grant {permission}")
        plan.granted.append(permission)
    plan.extra = sorted(p for p in held if p not in plan.needed and p not in plan.optional)
    if revoke_extra:
        for permission in plan.extra:
            if not dry_run:
                graph.delete(f"/servicePrincipals/{pid}/appRoleAssignments/{held[permission]['id']}", f"revoke {permission}")
            plan.revoked.append(permission)
    return plan


def print_plan(plan: Plan, *, source: str, principal: Mapping[str, Any] | None, dry_run: bool) -> None:
    width = max((len(p) for p in [*plan.needed, *plan.extra]), default=10)
    print(f"Microsoft Graph application permissions the policy needs ({source}):")
    for permission, features in plan.needed.items():
        print(f"  {permission:<{width}}  for: {', '.join(features)}")
    for permission, features in plan.optional.items():
        if permission not in plan.needed:
            print(f"  optional: {permission} for: {', '.join(features)} (granted only with --with-optional)")
    if principal is None:
        print("plan only (no --principal-id or --client-id): nothing was read from or written to the tenant")
        return
    name = principal.get("displayName") or "?"
    print(f"managed identity: {name} (object id {principal['id']}, client id {principal.get('appId')})")
    would = "would " if dry_run else ""
    rows = [("already granted", p) for p in plan.already] + [(f"{would}grant", p) for p in plan.granted]
    rows += [(f"{would}revoke" if p in plan.revoked else "extra", p) for p in plan.extra]
    for label, permission in rows:
        note = "  (not needed by this policy; --revoke-extra removes it)" if label == "extra" else ""
        print(f"  {label:<15}  {permission}{note}")
    verb = "would grant" if dry_run else "granted"
    print(f"summary: {verb} {len(plan.granted)}, already granted {len(plan.already)}, "
          f"{'would revoke' if dry_run else 'revoked'} {len(plan.revoked)}, extra {len(plan.extra) - len(plan.revoked)}")
    if plan.granted and not dry_run:
        print("new permissions reach the app's tokens within minutes to a few hours (token cache); restart the app to hurry")


def token_for(graph_url: str) -> str | None:
    host = urlsplit(graph_url).hostname
    if is_loopback_host(host):
        return None  # a local test double: no token
    from azure.identity import DefaultAzureCredential

    scope = "https://graph.microsoft.com/.default" if host == "graph.microsoft.com" else f"https://{host}/.default"
    try:
        return DefaultAzureCredential(exclude_managed_identity_credential=True).get_token(scope).token
    except Exception as exc:  # azure-identity raises several unrelated types; all mean "not signed in"
        raise GrantError(f"no Graph token ({type(exc).__name__}); {ADMIN_HINT}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", help="policy YAML (default: JANITOR_POLICY, else the safe defaults: report mode)")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--principal-id", help="object id of the managed identity (azd output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID)")
    who.add_argument("--client-id", help="client id of the managed identity (AZURE_MANAGED_IDENTITY_CLIENT_ID)")
    parser.add_argument("--no-tickets", action="store_true", help="leave out what the ticket webhook needs (when it is unused)")
    parser.add_argument(
        "--with-optional", action="store_true",
        help="also grant the optional reads janitor doctor uses (Conditional Access policies, dynamic group rules)",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    parser.add_argument("--revoke-extra", action="store_true", help="also remove Graph permissions the policy does not need")
    parser.add_argument("--graph-url", default=GRAPH_URL, help=f"Graph endpoint (default {GRAPH_URL})")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = parser.parse_args(argv)

    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tickets = not args.no_tickets
    optional = optional_permissions(policy, tickets=tickets)
    needed = needed_permissions(policy, tickets=tickets) | (optional if args.with_optional else {})
    plan = Plan(dict(sorted(needed.items())), optional)
    source = f"{args.policy or 'default policy'}, mode {policy.mode}, ticket webhook {'off' if args.no_tickets else 'on'}"
    source += ", optional doctor reads included" if args.with_optional else ""
    principal = None
    try:
        if args.principal_id or args.client_id:
            graph = Graph(args.graph_url, token_for(args.graph_url))
            principal = find_principal(graph, args.principal_id, args.client_id)
            apply(graph, principal, plan, dry_run=args.dry_run, revoke_extra=args.revoke_extra)
        elif not args.dry_run:
            print("error: name the managed identity with --principal-id or --client-id (or use --dry-run)", file=sys.stderr)
            return 2
    except (GrantError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"needed": list(plan.needed), "granted": plan.granted, "already_granted": plan.already,
                          "extra": plan.extra, "revoked": plan.revoked, "dry_run": args.dry_run}))
    else:
        print_plan(plan, source=source, principal=principal, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
