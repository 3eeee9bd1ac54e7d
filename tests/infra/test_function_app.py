"""The function app indexes offline with the worker's own indexer, and its bindings fit host.json and infra/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.doctor.settings_check import check_ncrontab
from shared.settings import SETTINGS
from tests.infra.bicep import ROOT
from tests.infra.test_bicep import app_settings

HOST_JSON = json.loads((ROOT / "host.json").read_text())


def index(app: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Index `app` in a fresh interpreter, as the worker does at start-up."""
    return subprocess.run(
        [sys.executable, "-m", "tests.infra.index_app", str(app)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def functions() -> dict[str, dict]:
    proc = index(ROOT / "function_app.py")
    assert proc.returncode == 0, f"the worker's indexer refused function_app.py:\n{proc.stderr[-3000:]}"
    return {f["name"]: f for f in json.loads(proc.stdout)}


def trigger(function: dict) -> dict:
    triggers = [b for b in function["bindings"] if b["type"].endswith("Trigger")]
    assert len(triggers) == 1, f"{function['name']}: expected one trigger, got {triggers}"
    return triggers[0]


def by_trigger(functions: dict[str, dict], kind: str) -> list[dict]:
    return [trigger(f) | {"function": name} for name, f in functions.items() if trigger(f)["type"] == kind]


def test_the_nightly_scan_timer_reads_its_schedule_from_the_setting(functions):
    scans = [t for t in by_trigger(functions, "timerTrigger") if t["function"] == "nightly_scan"]
    assert len(scans) == 1, f"no nightly_scan timer among {sorted(functions)}"
    assert scans[0]["schedule"] == "%SCAN_SCHEDULE%"
    assert scans[0].get("runOnStartup") is False, "a scan on every cold start would run more than nightly"


def test_the_worker_reads_the_queue_setting_through_the_identity_based_connection(functions):
    workers = by_trigger(functions, "serviceBusTrigger")
    assert [w["function"] for w in workers] == ["remediation_worker"]
    worker = workers[0]
    assert worker["queueName"] == "%SERVICEBUS_QUEUE_NAME%"
    assert worker["connection"] == "SERVICEBUS"
    settings = app_settings()
    # The host resolves connection SERVICEBUS from SERVICEBUS__* app settings (no connection string).
    assert {"SERVICEBUS__fullyQualifiedNamespace", "SERVICEBUS__credential", "SERVICEBUS__clientId"} <= set(settings)
    assert "SERVICEBUS" not in settings


def test_the_http_routes_are_the_documented_ones_behind_function_keys(functions):
    routes = {(t["route"], tuple(t["methods"])) for t in by_trigger(functions, "httpTrigger")}
    for expected in [("tickets", ("POST",)), ("audit", ("GET",))]:
        assert expected in routes, f"missing HTTP function {expected}; have {sorted(routes)}"
    assert any(re.fullmatch(r"tickets/\{\w+\}", r) and m == ("GET",) for r, m in routes), sorted(routes)
    for t in by_trigger(functions, "httpTrigger"):
        if t["function"] == "keep_link":  # the owners' keep link: anonymous, the signed expiring token is the key
            assert (t["route"], sorted(t["methods"]), t["authLevel"]) == ("keep/{token}", ["GET", "POST"], "ANONYMOUS")
            continue
        assert t["authLevel"] == "FUNCTION", f"{t['function']} must require a function key"


def test_every_setting_placeholder_in_a_binding_is_declared_and_set_in_azure(functions):
    declared = {s.name for s in SETTINGS}
    set_in_azure = set(app_settings())
    for name, function in functions.items():
        for binding in function["bindings"]:
            for value in binding.values():
                for setting in re.findall(r"%([^%]+)%", str(value)):
                    assert setting in declared, f"{name}: %{setting}% is not in shared/settings.py"
                    assert setting in set_in_azure, f"{name}: %{setting}% is not set by infra/"


def test_literal_timer_schedules_are_valid_ncrontab(functions):
    for timer in by_trigger(functions, "timerTrigger"):
        if not timer["schedule"].startswith("%"):
            assert check_ncrontab(timer["schedule"]) is None, timer


def test_the_app_still_indexes_with_broken_settings():
    """Clients are built lazily: a bad app setting must never stop the host from finding the functions."""
    env = dict(os.environ, QUEUE_BACKEND="carrier-pigeon", GRAPH_AUTH="telepathy", AUDIT_BACKEND="stone-tablets",
               GRAPH_BASE_URL="not a url", JANITOR_POLICY="/nonexistent/policy.yaml")  # fmt: skip
    proc = index(ROOT / "function_app.py", env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"nightly_scan", "remediation_worker"} <= {f["name"] for f in json.loads(proc.stdout)}


def test_the_indexer_rejects_a_parameter_that_matches_no_binding(tmp_path):
    """The worker's indexer checks what the azure-functions library alone misses: arg_name vs parameter."""
    app = tmp_path / "mismatched_app.py"
    app.write_text(textwrap.dedent('''
        import azure.functions as func
        app = func.FunctionApp()

        @app.service_bus_queue_trigger(arg_name="msg", queue_name="q", connection="SERVICEBUS")
        def worker(message: func.ServiceBusMessage) -> None:
            pass
    '''))
    proc = index(app)
    assert proc.returncode != 0
    assert "FunctionLoadError" in proc.stderr and "message" in proc.stderr


def test_host_json_keeps_the_bundle_and_tunes_the_worker():
    assert HOST_JSON["version"] == "2.0"
    assert HOST_JSON["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    sb = HOST_JSON["extensions"]["serviceBus"]
    # The worker relies on the host completing on success and abandoning on an exception.
    assert sb["autoCompleteMessages"] is True
    # Prefetched messages' locks tick while they wait; with gated writes, take only what is being worked on.
    assert sb["prefetchCount"] == 0
    assert 1 <= sb["maxConcurrentCalls"] <= 16

    def seconds(value: str) -> int:
        h, m, s = (int(x) for x in value.split(":"))
        return h * 3600 + m * 60 + s

    # A command may spend a long time in Graph retries: the lock must be renewed for as long as it can run.
    assert seconds(sb["maxAutoLockRenewalDuration"]) >= seconds(HOST_JSON["functionTimeout"])
