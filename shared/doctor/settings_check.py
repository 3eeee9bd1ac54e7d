"""Settings, each parsed the way the code parses it: the components' own builders, not a second copy.

Every builder below is what the app calls at run time (`build_gateway`, `open_sender`, `open_audit_log`,
`open_budget`, `load_policy`, the settings helpers); none does I/O. A ConfigError names the setting, so the
doctor prints one line per setting: ok with its value (secrets hidden) or FAIL with the problem and the fix.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from shared import settings
from shared.doctor.report import CheckResult, fail, ok
from shared.errors import ConfigError, JanitorError

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
_SECRET_MARKERS = ("SECRET", "CONNECTION_STRING", "KEY")


async def _close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if close is not None:
        result = close()
        if inspect.isawaitable(result):
            await result


def _graph(env: Mapping[str, str]) -> Any:
    from shared.graph import build_gateway

    return build_gateway(env)


def _queue(env: Mapping[str, str]) -> Any:
    from shared.queue import open_sender

    return open_sender(env)


def _audit(env: Mapping[str, str]) -> Any:
    from shared.audit import open_audit_log

    return open_audit_log(env)


def _budget(env: Mapping[str, str]) -> Any:
    from shared.worker.budget import open_budget

    return open_budget(env)


def _worker(env: Mapping[str, str]) -> None:
    settings.flag("JANITOR_KILL_SWITCH", env)
    settings.number("SERVICEBUS_MAX_DELIVERY_COUNT", env, minimum=1, integer=True)


def _policy(env: Mapping[str, str]) -> None:
    from shared.policy import PolicyError, load_policy

    try:
        load_policy(None, env=env)
    except PolicyError as exc:
        problems = "; ".join(str(p) for p in exc.problems) or str(exc)
        raise ConfigError("JANITOR_POLICY", f"policy {exc.source} is invalid: {problems}") from None
    except OSError as exc:
        raise ConfigError("JANITOR_POLICY", f"cannot read the policy file ({exc.strerror or exc})") from None


# NCRONTAB: second minute hour day month day-of-week, each `*`, n, a-b, lists and /steps (names allowed).
_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {
    4: {m: i + 1 for i, m in enumerate(_MONTHS)},
    5: {d: i for i, d in enumerate(_DAYS)},
}
_PART = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


def check_ncrontab(expression: str) -> str | None:
    """None when `expression` is a valid 6-field NCRONTAB (what the timer trigger takes), else the problem."""
    fields = expression.split()
    if len(fields) != 6:
        return f"needs 6 fields (second minute hour day month day-of-week), not {len(fields)} in {expression!r}"
    for index, (field, (label, low, high)) in enumerate(zip(fields, _FIELDS, strict=True)):
        for part in field.lower().split(","):
            match = _PART.match(part)
            if not match:
                return f"the {label} field {field!r} is not valid NCRONTAB"
            if match.group(2) is not None and int(match.group(2)) == 0:
                return f"the {label} field {field!r} has a step of 0"
            if match.group(1) == "*":
                continue
            for bound in match.group(1).split("-"):
                value = _NAMES.get(index, {}).get(bound, int(bound) if bound.isdigit() else None)
                if value is None or not low <= value <= high:
                    return f"the {label} field {field!r} must be within {low}-{high}"
    return None


def _schedule(env: Mapping[str, str]) -> None:
    for name in ("SCAN_SCHEDULE", "TICKET_CALLBACK_SCHEDULE"):
        problem = check_ncrontab(settings.require(name, env))
        if problem:
            raise ConfigError(name, problem)


def _scan_reading(env: Mapping[str, str]) -> None:
    from shared.scan.partitions import ReadPlan

    ReadPlan.from_settings(env)


def _telemetry(env: Mapping[str, str]) -> None:
    value = settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING", env)
    if value is None:
        return
    parts = dict(p.split("=", 1) for p in value.split(";") if "=" in p)
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", parts.get("InstrumentationKey", "").strip()):
        raise ConfigError(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "has no InstrumentationKey=<guid>; copy the component's connection string from Application Insights",
        )


def _secrets(env: Mapping[str, str]) -> None:
    """A Key Vault reference still visible to the code means the platform could not resolve it."""
    for name in ("WEBHOOK_SECRET", "TICKET_ID_SECRET", "KEEP_LINK_SECRET"):
        value = settings.get(name, env) or ""
        if value.startswith(KEY_VAULT_REFERENCE):
            raise ConfigError(
                name,
                "is an unresolved Key Vault reference: give the app's managed identity 'Key Vault Secrets User' on the "
                "secret and set the app's keyVaultReferenceIdentity to it (infra/ does both), then restart the app",
            )


def _keep_links(env: Mapping[str, str]) -> None:
    """The keep links' secret and the origin they point at, parsed as the worker and /api/keep parse them."""
    from shared.keep.links import links_from_settings

    links_from_settings(env)


#: (what is parsed, the code's parser, the setting a non-ConfigError failure is charged to)
PARSERS: tuple[tuple[str, Callable[[Mapping[str, str]], Any], str], ...] = (
    ("data folder", settings.data_dir, "JANITOR_DATA_DIR"),
    ("graph", _graph, "GRAPH_BASE_URL"),
    ("queue", _queue, "QUEUE_BACKEND"),
    ("audit", _audit, "AUDIT_BACKEND"),
    ("budget", _budget, "BUDGET_TABLE_NAME"),
    ("worker", _worker, "JANITOR_KILL_SWITCH"),
    ("policy", _policy, "JANITOR_POLICY"),
    ("schedule", _schedule, "SCAN_SCHEDULE"),
    ("scan reading", _scan_reading, "SCAN_PARTITIONS"),
    ("telemetry", _telemetry, "APPLICATIONINSIGHTS_CONNECTION_STRING"),
    ("secrets", _secrets, "WEBHOOK_SECRET"),
    ("keep links", _keep_links, "KEEP_LINK_SECRET"),
)


async def parse_errors(env: Mapping[str, str]) -> dict[str, str]:
    """Setting name -> problem, from running every parser once (a parser stops at its first problem)."""
    errors: dict[str, str] = {}
    for _label, parse, charged_to in PARSERS:
        try:
            built = parse(env)
            if inspect.isawaitable(built):
                built = await built
            await _close(built)
        except ConfigError as exc:
            errors.setdefault(exc.setting, exc.problem)
        except (JanitorError, ValueError, OSError) as exc:
            errors.setdefault(charged_to, str(exc))
    return errors


def shown(name: str, value: str | None) -> str:
    """How a value appears in the report: secrets and connection strings are never printed."""
    if value is None:
        return "not set"
    if any(marker in name.upper() for marker in _SECRET_MARKERS):
        return "set (hidden)"
    return repr(value)


async def check_settings(env: Mapping[str, str]) -> list[CheckResult]:
    """One line per declared setting (plus any setting a parser complained about that is not declared)."""
    errors = await parse_errors(env)
    results: list[CheckResult] = []
    for setting in settings.SETTINGS:
        raw = env.get(setting.name) or None
        if setting.name in errors:
            results.append(fail(f"setting {setting.name}", errors.pop(setting.name), f"set {setting.name}: {setting.help}"))
        else:
            source = "" if raw is not None else " (default)"
            results.append(ok(f"setting {setting.name}", f"{shown(setting.name, settings.get(setting.name, env))}{source}"))
    for name, problem in errors.items():
        results.append(fail(f"setting {name}", problem, "see docs/deploy.md, settings table"))
    return results
