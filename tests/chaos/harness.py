"""The chaos run: scan -> queue -> several worker processes against the simulator, with faults; then the invariants.

    report = await run_chaos(ChaosConfig(devices=1500), workdir)

What happens:
1. A seeded tenant is served by the simulator in this process (10 % 5xx, added latency, a write budget that
   answers 429 with Retry-After, and 429 storms switched on and off while the run goes).
2. The nightly scan (enforce policy) runs here against it and queues its commands (the embedded SQLite
   queue, or Service Bus on the loopback AMQP broker: `ChaosConfig.backend`, tests/chaos/stores.py);
   every message it hands over is recorded. Then the same messages are sent again (duplicate
   detection must drop them), poison messages are injected, and copies of some commands are sent under new
   message ids (duplicate deliveries the queue cannot recognise), some at once and some mid-run.
3. Worker processes (`tests/chaos/worker_main.py`, the project's `drain` + `Worker`, wired from settings like
   `janitor work`) share the queue, audit log, budget and command leases (SQLite files, or Service Bus and
   Table Storage on Azurite). One is SIGKILLed right after an intent record, one right after a Graph write
   (before its outcome record), others at random moments; each is replaced. The SQLite audit file is
   locked for writing for a few seconds (the store is down). Short peek-locks make killed workers'
   messages come back.
4. When the queue is empty the invariants are checked (tests/chaos/invariants.py) and returned as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.graph.gateway import GraphGateway
from shared.graph.pacer import WritePacer
from shared.policy import policy_from_data
from shared.ports import AuditQuery, OutgoingMessage, QueueSender
from shared.scan import run_scan
from simulator import Faults, Limits, RunningSimulator, Tenant, run_simulator
from tests.chaos.invariants import Evidence, check
from tests.chaos.stores import Stores, open_stores

ROOT = Path(__file__).resolve().parents[2]

#: Messages no worker may act on: each must end in the dead-letter queue with a reason.
POISON: tuple[bytes, ...] = (
    b"{not json",
    b'{"schema":"entra-janitor/command","version":9,"command_id":"x","run_id":"r"}',
    b'{"schema":"entra-janitor/command","version":1,"run_id":"r"}',
    b'{"schema":"someone-else/command","version":1}',
    b"\xff\xfe\x00garbage",
    b"[]",
)


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """Size and faults of one run. The defaults are the CI size (about a minute on two cores)."""

    devices: int = 1500
    seed: int = 11
    profile: str = "mixed"
    workers: int = 3
    concurrency: int = 8
    random_kills: int = 3
    window_kills: tuple[str, ...] = ("intent", "write")  # SIGKILL inside these windows (worker_main's pauses)
    error_rate_5xx: float = 0.10
    latency_ms: float = 15.0
    storm_every_s: float = 5.0
    storm_seconds: float = 1.5
    storm_rate: float = 0.5
    storm_retry_after: int = 1
    audit_outage_at_s: float = 3.0  # after the workers start
    audit_outage_s: float = 3.0
    lock_seconds: float = 4.0
    max_deliveries: int = 10
    poison: int = 4
    duplicates: int = 16  # commands re-sent under new message ids (half at once, half mid-run)
    write_budget: int = 300  # the simulator's write budget per window (429 + Retry-After beyond it)
    write_window_s: float = 10.0
    max_destructive_fraction: float = 0.5  # the breaker; 0.05 (the default policy's) halts a "stale20" fleet
    timeout_s: float = 300.0
    backend: str = "sqlite"  # or "azure": Service Bus (AMQP test broker) + Table audit, budget, leases (Azurite)


@dataclass(slots=True)
class Tally:
    """What the supervisor did to the workers."""

    random_kills: int = 0
    window_kills: dict[str, int] = field(default_factory=dict)
    window_commands: dict[str, str] = field(default_factory=dict)
    started: int = 0
    crashed: int = 0  # exits nobody asked for
    storms: int = 0
    audit_outages: int = 0
    audit_outage_seconds: float = 0.0


class RecordingSender:
    """The queue, remembering every message the scan handed to it."""

    def __init__(self, queue: QueueSender) -> None:
        self.queue = queue
        self.sent: list[OutgoingMessage] = []

    async def send(self, messages: Sequence[OutgoingMessage]) -> int:
        count = await self.queue.send(messages)
        self.sent.extend(messages)
        return count

    async def close(self) -> None:
        return None


def chaos_policy(tenant: Tenant, config: ChaosConfig) -> dict[str, Any]:
    """Enforce mode over the tenant's reference policy; by default the breaker lets the whole run act."""
    data = tenant.reference_policy()
    data["mode"] = "enforce"
    data["limits"] = {
        "max_destructive_per_run": 10_000,
        "max_destructive_fraction": config.max_destructive_fraction,
        "max_destructive_per_day": 10_000,
    }
    data["notify"] = {"owners": True, "admins": [tenant.admin_upn], "digest": False}
    return data


def worker_env(sim: RunningSimulator, config: ChaosConfig, data_dir: Path, policy_file: Path, stores: Stores) -> dict[str, str]:
    """The settings a worker process reads: the same ones `janitor work` reads."""
    ours = ("GRAPH_", "QUEUE_", "AUDIT_", "BUDGET_", "SERVICEBUS", "JANITOR_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(stores.env)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        GRAPH_BASE_URL=sim.base_url,
        GRAPH_AUTH="anonymous",
        GRAPH_WRITE_BUDGET=str(max(1, config.write_budget // config.workers)),
        GRAPH_WRITE_WINDOW_SECONDS=str(config.write_window_s),
        JANITOR_DATA_DIR=str(data_dir),
        JANITOR_POLICY=str(policy_file),
        QUEUE_LOCK_SECONDS=str(config.lock_seconds),
        SERVICEBUS_MAX_DELIVERY_COUNT=str(config.max_deliveries),
        MAIL_SENDER=sim.tenant.sender_upn,
        CHAOS_CONCURRENCY=str(config.concurrency),
        CHAOS_PARENT_PID=str(os.getpid()),
    )
    return env


class Workers:
    """Worker processes in fixed slots; a killed or exited one is replaced. `stop()` kills them all."""

    def __init__(self, config: ChaosConfig, env: dict[str, str], workdir: Path, tally: Tally) -> None:
        self.config, self.env, self.workdir, self.tally = config, env, workdir, tally
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * config.workers
        self.pauses: list[str] = [""] * config.workers
        self.asked_to_die: set[int] = set()
        for slot, window in enumerate(config.window_kills[: config.workers]):
            self.pauses[slot] = window

    def marker(self, slot: int) -> Path:
        return self.workdir / f"pause-{slot}.json"

    def start(self, slot: int) -> None:
        env = dict(self.env)
        if self.pauses[slot]:
            env.update(CHAOS_PAUSE_AT=self.pauses[slot], CHAOS_MARKER=str(self.marker(slot)))
        log = (self.workdir / f"worker-{slot}.log").open("ab")
        self.procs[slot] = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.worker_main"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.tally.started += 1

    def kill(self, slot: int) -> None:
        proc = self.procs[slot]
        if proc is not None and proc.poll() is None:
            self.asked_to_die.add(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def tend(self) -> None:
        """Fire the window kills whose marker appeared; replace every process that is gone."""
        for slot, proc in enumerate(self.procs):
            if self.pauses[slot] and self.marker(slot).exists():
                facts = json.loads(self.marker(slot).read_text())
                self.kill(slot)
                window = self.pauses[slot]
                self.tally.window_kills[window] = self.tally.window_kills.get(window, 0) + 1
                self.tally.window_commands[window] = facts.get("command_id") or facts.get("device_object_id", "")
                self.pauses[slot] = ""
                self.marker(slot).unlink()
                proc = self.procs[slot]
            if proc is None or proc.poll() is not None:
                if proc is not None and proc.pid not in self.asked_to_die:
                    self.tally.crashed += 1
                self.start(slot)

    def kill_random(self, rng: random.Random) -> bool:
        """SIGKILL one worker that is not waiting inside a planned window."""
        slots = [s for s, p in enumerate(self.procs) if p is not None and p.poll() is None and not self.pauses[s]]
        if not slots:
            return False
        self.kill(rng.choice(slots))
        self.tally.random_kills += 1
        return True

    def stop(self) -> None:
        for slot in range(len(self.procs)):
            self.kill(slot)


async def scan_and_queue(sim: RunningSimulator, config: ChaosConfig, stores: Stores, policy: Any) -> tuple[Any, list, dict]:
    """The nightly scan (under the same faults) into the shared queue; then duplicates and poison."""
    rng = random.Random(config.seed)
    graph = GraphGateway(sim.base_url, None, pacer=WritePacer(max(1, config.write_budget), config.write_window_s))
    audit = stores.audit()
    queue = stores.sender()
    sender = RecordingSender(queue)
    try:
        env = {"MAIL_SENDER": sim.tenant.sender_upn}
        summary = await run_scan(graph, sender, audit, policy, now=sim.tenant.now, env=env)
        before = await stores.held()
        await queue.send(sender.sent)  # the same message ids again: duplicate detection drops them all
        resent_dropped = len(sender.sent) - (await stores.held() - before)
        poison = [OutgoingMessage(message_id=f"poison-{i}", body=POISON[i % len(POISON)]) for i in range(config.poison)]
        await queue.send(poison)
        copies = rng.sample(sender.sent, min(config.duplicates, len(sender.sent)))
        now, later = copies[: len(copies) // 2], copies[len(copies) // 2 :]
        await queue.send([OutgoingMessage(message_id=f"copy-{m.message_id}", body=m.body) for m in now])
    finally:
        await queue.close()
        await audit.close()
        await graph.close()
    faults = {"resent_same_ids": len(sender.sent), "resent_dropped": resent_dropped, "copies_new_ids": len(copies)}
    return summary, sender.sent, {"poison": poison, "later_copies": later, "faults": faults}


async def supervise(
    sim: RunningSimulator, config: ChaosConfig, workdir: Path, stores: Stores, env: dict[str, str], later: list, tally: Tally
) -> tuple[float, bool]:
    """Run the workers until the queue is empty (or the timeout), killing and storming along the way."""
    rng = random.Random(config.seed + 1)
    queue = stores.sender()
    workers = Workers(config, env, workdir, tally)
    started = time.monotonic()
    next_kill = started + rng.uniform(1.5, 3.5)
    next_storm = started + rng.uniform(1.0, config.storm_every_s)
    storm_until = 0.0
    outage: asyncio.Task[None] | None = None
    copies_sent = False
    timed_out = False
    try:
        while True:
            now = time.monotonic()
            workers.tend()
            if not copies_sent and now - started > 2.0:
                await queue.send([OutgoingMessage(message_id=f"copy-{m.message_id}", body=m.body) for m in later])
                copies_sent = True
            if outage is None and config.audit_outage_s > 0 and now - started > config.audit_outage_at_s:
                outage = asyncio.create_task(stores.audit_outage(config.audit_outage_s, tally))
            if tally.random_kills < config.random_kills and now >= next_kill and workers.kill_random(rng):
                next_kill = now + rng.uniform(1.5, 4.0)
            if config.storm_rate and now >= next_storm:
                sim.faults.storm_429, sim.faults.storm_retry_after = config.storm_rate, config.storm_retry_after
                storm_until, next_storm = now + config.storm_seconds, now + config.storm_every_s
                tally.storms += 1
            if storm_until and now >= storm_until:
                sim.faults.storm_429, storm_until = 0.0, 0.0
            pending = await stores.held()
            planned_done = copies_sent and (outage is None or outage.done()) and not any(workers.pauses)
            if pending == 0 and planned_done:
                break
            if now - started > config.timeout_s:
                timed_out = True
                break
            await asyncio.sleep(0.05)
    finally:
        workers.stop()
        sim.faults.storm_429 = 0.0
        if outage is not None:
            await outage
        await queue.close()
    return time.monotonic() - started, timed_out


async def collect(
    stores: Stores, sent: list, summary: Any, tenant: Tenant, flags: dict, poison: list, windows: dict[str, str]
) -> tuple[dict, dict]:
    """Read what the run left behind and check the invariants."""
    audit = stores.audit()
    try:
        records = [r async for r in audit.iter_records(AuditQuery())]
        breaks = await audit.verify()
        dead = await stores.dead_letters()
    finally:
        await audit.close()
    blocked = {
        r.entry.command_id
        for r in records
        if r.entry.kind == "decision" and r.entry.run_id == summary.run_id and any(
            g.get("name") == "breaker" for g in r.entry.data.get("gates", [])
        )
    }
    selected = frozenset({m.message_id for m in sent} | blocked)
    evidence = Evidence(
        selected=selected,
        records=records,
        write_attempts=list(tenant.write_attempts),
        flags=flags,
        dead_letters=dead,
        poison_ids=frozenset(m.message_id for m in poison),
    )
    invariants = check(evidence, windows)
    invariants["breaker_blocked"] = len(blocked)
    invariants["audit_chain_breaks"] = len(breaks)
    if breaks:
        invariants["violations"].append("audit_chain_breaks")
    decisions: dict[str, int] = {}
    reconciled = 0
    for r in records:
        if r.entry.kind == "decision" and r.entry.command_id in selected:
            decisions[r.entry.decision or "?"] = decisions.get(r.entry.decision or "?", 0) + 1
            reconciled += bool(r.entry.data.get("reconciled"))
    return invariants, {"decisions": decisions, "reconciled_after_crash": reconciled, "records": len(records)}


async def run_chaos(config: ChaosConfig, workdir: Path) -> dict[str, Any]:
    """One whole chaos run in `workdir` (created); returns the JSON-ready report (`ok` when no invariant broke)."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    clock = time.monotonic()
    tenant = Tenant.generate(devices=config.devices, seed=config.seed, profile=config.profile)
    flags = {oid: frozenset(tenant.truth.flags(oid)) for oid in tenant.object_ids()}
    policy_data = chaos_policy(tenant, config)
    policy_file = workdir / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy_data))
    policy = policy_from_data(policy_data)
    tally = Tally()
    limits = Limits(write_budget=config.write_budget, write_window_s=config.write_window_s)
    faults = Faults(error_rate_5xx=config.error_rate_5xx, latency_ms=config.latency_ms, seed=config.seed)
    async with open_stores(config, workdir, data_dir) as stores, run_simulator(tenant, limits=limits, faults=faults) as sim:
        scan_started = time.monotonic()
        summary, sent, extra = await scan_and_queue(sim, config, stores, policy)
        scan_seconds = time.monotonic() - scan_started
        env = worker_env(sim, config, data_dir, policy_file, stores)
        work_seconds, timed_out = await supervise(sim, config, workdir, stores, env, extra["later_copies"], tally)
        stats = sim.stats.snapshot()
        invariants, outcome = await collect(stores, sent, summary, tenant, flags, extra["poison"], tally.window_commands)
        left_in_stores = await stores.describe()
    report = {
        "config": asdict(config),
        "seconds": {"total": round(time.monotonic() - clock, 1), "scan": round(scan_seconds, 1), "work": round(work_seconds, 1)},
        "timed_out": timed_out,
        "scan": {**summary.to_json(), "blocked": summary.blocked},
        "chaos": {
            **extra["faults"],
            "poison_sent": len(extra["poison"]),
            "kills_random": tally.random_kills,
            "kills_in_window": tally.window_kills,
            "killed_in_window": tally.window_commands,
            "worker_processes_started": tally.started,
            "worker_crashes": tally.crashed,
            "storms_429": tally.storms,
            "audit_outages": tally.audit_outages,
            "audit_outage_seconds": tally.audit_outage_seconds,
            "graph_5xx_injected": stats["faults_5xx"],
            "graph_429_sent": stats["throttled"],
            "graph_requests": stats["requests"],
            "graph_writes_ok": stats["writes"],
        },
        "outcome": outcome,
        "invariants": invariants,
        "stores": left_in_stores,
    }
    report["ok"] = not timed_out and not invariants["violations"] and tally.crashed == 0
    return report
