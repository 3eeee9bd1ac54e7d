"""The chaos suite at CI size: the whole pipeline under faults, with every invariant asserted.

One run (module fixture, about half a minute on two cores) of tests/chaos/harness.py: scan, then three
worker processes against the simulator with 10 % 5xx, 429 storms, latency, SIGKILLs (random, and inside
the intent -> write and write -> outcome windows), duplicate deliveries, poison messages and the audit store
locked for three seconds. A second, smaller run trips the blast-radius breaker. A third, small run does the
same on the Azure adapters: Service Bus on the loopback AMQP test broker, and the Table audit log, budget and
command leases on Azurite. Bigger runs: `python bench/chaos.py --devices N --workers W --random-kills K
[--backend azure] --json`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import ChaosConfig, run_chaos

CI = ChaosConfig()
BREAKER = ChaosConfig(devices=600, seed=5, profile="stale20", workers=2, random_kills=1, window_kills=(), duplicates=6,
                      audit_outage_s=2.0, max_destructive_fraction=0.05)
#: No audit outage on Table Storage: stopping the emulator would stop the budget and the leases as well.
AZURE = ChaosConfig(devices=300, workers=2, random_kills=1, duplicates=8, audit_outage_s=0.0, backend="azure")


def _run(config: ChaosConfig, workdir: Path) -> dict[str, Any]:
    report = asyncio.run(run_chaos(config, workdir))
    assert not report["timed_out"], f"the chaos run did not finish within {config.timeout_s} s; see {workdir}/worker-*.log"
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(CI, tmp_path_factory.mktemp("chaos"))


def _assert_promises_kept(report: dict[str, Any], config: ChaosConfig) -> None:
    inv = report["invariants"]
    assert inv["violations"] == [], inv["examples"]
    assert inv["selected"] == report["scan"]["commands_enqueued"] > 0
    assert inv["with_one_terminal_decision"] == inv["selected"]
    assert inv["writes_without_prior_intent"] == inv["devices_written_twice"] == 0
    assert inv["writes_to_protected_or_hybrid"] == inv["deletes_of_key_or_intune_devices"] == 0
    assert inv["dead_letters"] == config.poison and inv["reasons"] == {"InvalidCommand": config.poison}
    assert inv["audit_chain_breaks"] == 0
    assert inv["kill_windows_checked"] == ["intent", "write"] and report["chaos"]["kills_random"] == config.random_kills
    assert report["chaos"]["worker_crashes"] == 0 and report["ok"]


def test_every_invariant_holds(report):
    _assert_promises_kept(report, CI)


def test_the_faults_really_happened(report):
    chaos = report["chaos"]
    assert chaos["graph_5xx_injected"] > 0 and chaos["graph_429_sent"] > 0 and chaos["storms_429"] > 0
    assert chaos["kills_random"] == CI.random_kills
    assert chaos["kills_in_window"] == {"intent": 1, "write": 1}
    assert report["invariants"]["kill_windows_checked"] == ["intent", "write"]
    assert chaos["audit_outages"] == 1 and chaos["audit_outage_seconds"] >= CI.audit_outage_s
    assert chaos["resent_dropped"] == chaos["resent_same_ids"] > 0  # duplicate detection dropped every re-send
    assert chaos["copies_new_ids"] == CI.duplicates
    assert chaos["worker_processes_started"] >= CI.workers + CI.random_kills + 2  # each killed worker replaced


def test_the_work_was_done(report):
    decisions = report["outcome"]["decisions"]
    assert decisions.get("acted", 0) > 0 and decisions.get("failed", 0) == 0
    assert report["invariants"]["graph_writes"] > 0
    assert report["outcome"]["reconciled_after_crash"] >= 1  # at least the write-window kill


def test_a_breaker_halt_leaves_one_blocked_decision_per_candidate(tmp_path):
    halted = _run(BREAKER, tmp_path)
    inv = halted["invariants"]
    assert halted["scan"]["halted"] and inv["breaker_blocked"] == halted["scan"]["blocked"] > 0
    assert inv["selected"] == halted["scan"]["commands_enqueued"] + inv["breaker_blocked"]
    assert inv["violations"] == [], inv["examples"]
    assert set(inv["graph_writes_by_kind"]) <= {"tag"}  # nothing destructive was queued: only tags, reports, mails
    assert halted["ok"]


def test_the_azure_adapters_keep_the_same_promises(tmp_path):
    run = _run(AZURE, tmp_path)
    _assert_promises_kept(run, AZURE)
    stores = run["stores"]
    assert stores["backend"] == "azure" and stores["data_files"] == []  # nothing fell back to the embedded stores
    assert stores["broker_duplicates_dropped"] >= run["chaos"]["resent_same_ids"] > 0
    assert stores["budget_reservations"] > 0  # the workers reserved on the Table budget
    assert stores["leases_left"] == 0  # killed workers' leases were taken over and released, none lingers
    assert run["invariants"]["graph_writes"] > 0 and run["outcome"]["reconciled_after_crash"] >= 1
