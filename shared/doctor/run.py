"""`janitor doctor`: every check in order, each a line; the exit code says whether any failed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from shared import settings
from shared.doctor.graph_check import check_graph
from shared.doctor.probes import probe_audit, probe_queue
from shared.doctor.report import CheckResult, fail, ok
from shared.doctor.settings_check import check_settings
from shared.policy import Policy


def _load_policy(env: Mapping[str, str]) -> Policy | None:
    from shared.policy import load_policy

    try:
        return load_policy(None, env=env)
    except Exception:  # already reported, with the problems, by the settings check of JANITOR_POLICY
        return None


def consistency(env: Mapping[str, str], policy: Policy | None) -> list[CheckResult]:
    """Checks that span settings: mail needs a sender; every connection uses the same identity."""
    results: list[CheckResult] = []
    if policy is not None and (policy.notify.admins or (policy.enforce and policy.notify.owners)):
        if settings.get("MAIL_SENDER", env) is None:
            results.append(
                fail(
                    "mail sender",
                    "the policy sends mail (notify.owners in enforce mode, or notify.admins) but MAIL_SENDER is not set",
                    "set MAIL_SENDER to the UPN of a mailbox the app may send as (Mail.Send), or turn the notices off",
                )
            )
        else:
            results.append(ok("mail sender", f"notices are sent as {settings.get('MAIL_SENDER', env)}"))
    ids = {
        name: env[name].strip().lower()
        for name in ("AZURE_CLIENT_ID", "SERVICEBUS__clientId", "AzureWebJobsStorage__clientId")
        if env.get(name, "").strip()
    }
    if len(set(ids.values())) > 1:
        listed = ", ".join(f"{k}={v}" for k, v in ids.items())
        fix = "set them all to the client id of the app's user-assigned identity"
        results.append(fail("identity", f"the connections name different identities: {listed}", fix))
    elif ids:
        results.append(ok("identity", f"every connection uses client id {next(iter(ids.values()))}"))
    return results


async def run_checks(
    env: Mapping[str, str] | None = None, *, policy_file: str | None = None, credential: Any = None
) -> list[CheckResult]:
    """All checks against `env` (default: the process environment). `credential` replaces GRAPH_AUTH's (tests)."""
    values: dict[str, str] = dict(os.environ if env is None else env)
    if policy_file is not None:
        values["JANITOR_POLICY"] = policy_file
    results = await check_settings(values)
    policy = _load_policy(values)
    results.extend(consistency(values, policy))
    results.append(await probe_queue(values))
    results.append(await probe_audit(values))
    results.extend(await check_graph(values, policy, credential=credential))
    return results
