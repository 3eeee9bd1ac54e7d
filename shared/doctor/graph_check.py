"""Graph: do the permissions the token actually carries cover what the policy's features need?

The configured credential (GRAPH_AUTH) is asked for a Graph token; its `roles` claim is compared with
`needed_permissions(policy)`. Then one real call (the first page of /devices, through the gateway) proves
Graph is reachable with it, so a missing consent shows here, with the grant to run, not at 2 a.m. Last, the
Conditional Access device filters and dynamic group rules that read the tag attribute (shared.doctor.tag_usage).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared import settings
from shared.doctor.permissions import needed_permissions, optional_permissions, satisfies
from shared.doctor.report import CheckResult, Status, fail, ok, skip, warn
from shared.doctor.tag_usage import check_tag_usage
from shared.doctor.token import TokenClaims, TokenUnreadable, close_credential, decode_claims, get_token
from shared.errors import ConfigError, GraphError
from shared.policy import Policy

PERMISSIONS = "graph permissions"
LEAST = "graph least privilege"
REACH = "graph reachable"
NO_TOKEN = "no Graph token"
GRANT_FIX = (
    "grant them to the managed identity: .venv/bin/python infra/grant-graph-permissions.py "
    "--principal-id <AZURE_MANAGED_IDENTITY_PRINCIPAL_ID> --policy <policy file> (docs/deploy.md)"
)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def compare(
    claims: TokenClaims, needed: Mapping[str, tuple[str, ...]], client_id: str | None, optional: Iterable[str] = ()
) -> list[CheckResult]:
    """The permission verdicts for one token (pure). `optional` grants are neither needed nor extra."""
    if client_id and claims.app_id and claims.app_id.lower() != client_id.lower():
        return [
            fail(
                PERMISSIONS,
                f"the token is for app {claims.app_id}, not AZURE_CLIENT_ID {client_id}",
                "set AZURE_CLIENT_ID to the client id of the app's user-assigned managed identity",
            )
        ]
    if not claims.app_only:
        return [
            warn(
                PERMISSIONS,
                f"the token is a signed-in user's (delegated scopes: {', '.join(sorted(claims.scopes)) or 'none'}); "
                "application permissions can only be read from the app identity's token",
                "run the doctor where the app's identity is available (GRAPH_AUTH=managed_identity), or read the grant "
                "script's --dry-run plan for the identity",
            )
        ]
    missing = [p for p in needed if not any(satisfies(held, p) for held in claims.roles)]
    results: list[CheckResult] = []
    if missing:
        because = "; ".join(f"{p} (for {', '.join(needed[p])})" for p in missing)
        results.append(fail(PERMISSIONS, f"the token lacks {because}", GRANT_FIX))
    else:
        results.append(ok(PERMISSIONS, f"the token carries all {len(needed)} the policy needs: {', '.join(needed)}"))
    extra = sorted(claims.roles - set(needed) - set(optional))
    if extra:
        results.append(
            warn(
                LEAST,
                f"the token also carries {', '.join(extra)}, which this policy does not need",
                "remove them with infra/grant-graph-permissions.py --revoke-extra (unless a broader policy, such as "
                "enforce mode, is coming back soon)",
            )
        )
    return results


async def check_graph(env: Mapping[str, str], policy: Policy | None, *, credential: Any = None) -> list[CheckResult]:
    """Permission and reachability checks; `credential` replaces the one GRAPH_AUTH would build (tests)."""
    from shared.graph.client import credential_from_settings, endpoint_from

    try:
        endpoint = endpoint_from(settings.url("GRAPH_BASE_URL", env))
        own = credential is None
        cred = credential_from_settings(env) if own else credential
    except ConfigError as exc:
        note = f"not tried: setting {exc.setting} is wrong (see above)"
        return [skip(PERMISSIONS, note), skip(REACH, note)]
    try:
        results: list[CheckResult] = []
        if policy is None:
            results.append(skip(PERMISSIONS, "not tried: the policy does not load (see above)"))
        elif cred is None:
            results.append(skip(PERMISSIONS, "GRAPH_AUTH=anonymous (the loopback simulator) sends no token: no roles to read"))
        else:
            tickets = settings.get("WEBHOOK_SECRET", env) is not None
            needed = needed_permissions(policy, tickets=tickets)
            optional = optional_permissions(policy, tickets=tickets)
            results.extend(await _permissions(cred, endpoint.scope, needed, env, optional))
        if results and results[-1].name == PERMISSIONS and results[-1].detail.startswith(NO_TOKEN):
            results.append(skip(REACH, "not tried: no Graph token (see above)"))
        else:
            results.extend(await _reach_and_read(endpoint.base_url, cred, policy))
        return results
    finally:
        if own and cred is not None:
            await close_credential(cred)


async def _permissions(
    cred: Any, scope: str, needed: Mapping[str, tuple[str, ...]], env: Mapping[str, str], optional: Iterable[str]
) -> list[CheckResult]:
    mode = settings.get("GRAPH_AUTH", env)
    try:
        token = await get_token(cred, scope)
    except Exception as exc:  # azure-identity raises several unrelated types; all mean "no token"
        return [
            fail(
                PERMISSIONS,
                f"{NO_TOKEN} from GRAPH_AUTH={mode}: {type(exc).__name__}: {first_line(exc)}",
                "in Azure set AZURE_CLIENT_ID to the app's user-assigned identity; locally use GRAPH_AUTH=default after az login",
            )
        ]
    try:
        claims = decode_claims(token)
    except TokenUnreadable as exc:
        return [fail(PERMISSIONS, str(exc), "use a Microsoft Entra ID credential (GRAPH_AUTH=managed_identity or default)")]
    return compare(claims, needed, settings.get("AZURE_CLIENT_ID", env), optional)


async def _reach_and_read(base_url: str, cred: Any, policy: Policy | None) -> list[CheckResult]:
    """Reachability, then (when Graph answered and the policy loaded) what in the tenant reads the tag attribute."""
    from shared.graph.gateway import GraphGateway
    from shared.graph.retry import RetryPolicy

    gateway = GraphGateway(base_url, cred, retry=RetryPolicy(max_attempts=2, max_seconds=15, backoff_initial=0.5, backoff_max=2))
    try:
        reach = await _reach(base_url, gateway)
        if reach.status is not Status.OK or policy is None:
            return [reach]
        return [reach, *await check_tag_usage(gateway, policy.tag.attribute)]
    finally:
        await gateway.close()


async def _reach(base_url: str, gateway: Any) -> CheckResult:
    """One page of one device through the real gateway (no writes)."""
    pages = gateway.iter_devices(select=("id",), page_size=1)
    try:
        page = await anext(pages, None)
        return ok(REACH, f"{base_url}: listed devices ({'at least one' if page else 'none'} found)")
    except GraphError as exc:
        return fail(REACH, f"{base_url}: {exc}", "grant the permission named above, or check GRAPH_BASE_URL and the network")
    except Exception as exc:  # connection refused, DNS, TLS: say so plainly
        detail = f"{base_url}: {type(exc).__name__}: {first_line(exc)}"
        return fail(REACH, detail, "check GRAPH_BASE_URL and that the host is reachable")
    finally:
        await pages.aclose()
