"""A long fuzz run of the webhook, the callback checks, the dsregcmd parser and the policy loader: prints JSON.

    python bench/fuzz.py [--examples 2000] [--atheris-seconds 60] [--json]

Two engines over the same oracles as tests/fuzz (tests/fuzz/probes.py):
- hypothesis, `--examples` per property (CI runs 40-400): forged and replayed signatures, hostile bodies
  (oversized, deeply nested, huge numbers, wrong types, lone surrogates, odd encodings), unicode tricks in
  device names, SSRF-shaped callback URLs and DNS answers, mangled dsregcmd output, policy YAML;
- atheris (coverage-guided libFuzzer), `--atheris-seconds` per target, seeded with the repository's
  samples: ticket payload parsing, signature verification, dsregcmd parsing, policy loading.
Totals: accepted_forgeries and responses_5xx (both must be 0), violations (each property's first failing
input, shrunk), and per property how the inputs were answered. Exit 1 when anything broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from shared.tickets import ACTIONS  # noqa: E402
from tests.fuzz import probes  # noqa: E402
from tests.fuzz.strategies import (  # noqa: E402
    DSREGCMD_FIXTURES,
    WINDOW,
    callback_urls,
    dsregcmd_texts,
    forgeries,
    hostile_bodies,
    ip_addresses,
    policy_texts,
    tricky_names,
    valid_bodies,
)

TARGETS = ("ticket_payload", "signature", "dsregcmd", "policy")


def run_property(strategy: st.SearchStrategy, probe: Callable[..., str], examples: int) -> dict[str, Any]:
    """Run `probe` on `examples` inputs; count the labels it returns; keep the (shrunk) failure, if any."""
    outcomes: Counter[str] = Counter()

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(args: tuple) -> None:
        outcomes[probe(*args)] += 1

    started = time.perf_counter()
    failure = None
    try:
        prop()
    except Exception as exc:  # the property's shrunk counterexample
        failure = f"{type(exc).__name__}: {exc}"[:1500]
    return {"examples": sum(outcomes.values()), "outcomes": dict(outcomes), "seconds": round(time.perf_counter() - started, 1),
            "failure": failure}


def webhook_properties(examples: int, tmp: Path) -> dict[str, dict[str, Any]]:
    runner = asyncio.Runner()
    rig = probes.WebhookRig(tmp)

    def sync(coro_fn: Callable[..., Any]) -> Callable[..., str]:
        return lambda *args: runner.run(coro_fn(*args))

    pairs = valid_bodies().flatmap(lambda body: st.tuples(st.just(body), forgeries(body)))
    offsets = st.tuples(valid_bodies(), st.integers(-WINDOW - 3, WINDOW + 3) | st.integers(-(10**9), 10**9))
    names = st.tuples(tricky_names().map(lambda t: t[0]), st.sampled_from(ACTIONS), st.text("ABCDEFGHIJ0123456789", min_size=1,
                                                                                            max_size=10))
    try:
        return {
            "forged_signatures": run_property(pairs, sync(lambda b, h: probes.probe_forgery(rig, b, h)), examples),
            "replays": run_property(offsets, sync(lambda b, o: probes.probe_replay(rig, b, o)), examples),
            "hostile_bodies": run_property(
                st.tuples(hostile_bodies()), sync(lambda b: probes.probe_hostile_body(rig, b)), examples
            ),
            "unicode_device_names": run_property(names, sync(lambda n, a, t: probes.probe_device_name(rig, n, a, t)), examples),
        }
    finally:
        runner.run(rig.close())
        runner.close()


def other_properties(examples: int, tmp: Path) -> dict[str, dict[str, Any]]:
    hosts = st.sampled_from(["hooks.example.com", "a.contoso.com", "localhost"])
    resolution = st.tuples(hosts, st.lists(ip_addresses, min_size=1, max_size=3))
    cli_examples = max(20, examples // 10)  # a CLI invocation costs far more than a call
    return {
        "callback_urls": run_property(st.tuples(callback_urls()), probes.probe_callback_url, examples),
        "callback_dns_answers": run_property(resolution, lambda h, r: asyncio.run(probes.probe_resolution(h, r)), examples),
        "dsregcmd_parser": run_property(st.tuples(dsregcmd_texts()), probes.probe_dsregcmd, examples),
        "dsregcmd_cli": run_property(st.tuples(dsregcmd_texts()),
                                     lambda t: probes.probe_cli(["dsregcmd"], tmp / "status.txt", t), cli_examples),
        "policy_loader": run_property(st.tuples(policy_texts()), probes.probe_policy, examples),
        "policy_cli": run_property(st.tuples(policy_texts()),
                                   lambda t: probes.probe_cli(["policy", "check"], tmp / "policy.yaml", t), cli_examples),
    }


def seed_corpus(target: str, folder: Path) -> None:
    """Seeds from the repository's own samples, so libFuzzer starts from inputs that get past the first checks."""
    folder.mkdir(parents=True)
    seeds: list[bytes] = []
    if target == "ticket_payload":
        seeds = [p.read_bytes() for p in (ROOT / "tests" / "tickets" / "samples").glob("*.json")]
        seeds.append(b'{"ticket_id":"INC-1","device":{"name":"DESKTOP-1"},"action":"diagnose","requested_by":"a@b.c",'
                     b'"callback_url":"https://hooks.example.com/x"}')
    elif target == "signature":
        seeds = [b"t=1750000000,v1=" + b"0" * 64 + b'{"a":1}']
    elif target == "dsregcmd":
        seeds = [p.read_bytes() for p in DSREGCMD_FIXTURES]
    elif target == "policy":
        seeds = [(ROOT / "docs" / "policy.example.yaml").read_bytes(), b"mode: enforce\nstale: {disable_after_days: 120}\n"]
    for i, seed in enumerate(seeds):
        (folder / f"seed-{i}").write_bytes(seed)


def run_atheris(target: str, seconds: int, tmp: Path) -> dict[str, Any]:
    corpus = tmp / f"corpus-{target}"
    seed_corpus(target, corpus)
    artifacts = tmp / f"crash-{target}-"
    cmd = [sys.executable, str(ROOT / "tests" / "fuzz" / "atheris_targets.py"), target, f"-max_total_time={seconds}",
           "-max_len=65536", "-timeout=10", f"-artifact_prefix={artifacts}", str(corpus)]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 300)
    log = done.stderr.splitlines()
    runs = next((line.split()[1] for line in reversed(log) if line.startswith("Done ")), "0")
    coverage = next((line.split("cov:")[1].split()[0] for line in reversed(log) if "cov:" in line), "0")
    crash = None
    if done.returncode != 0:
        crash = "\n".join(line for line in log if "Error" in line or "Exception" in line or "crash-" in line)[-1500:] or log[-1]
    return {"runs": int(runs), "coverage_edges": int(coverage), "seconds": round(time.perf_counter() - started, 1),
            "corpus_inputs": len(list(corpus.iterdir())), "crash": crash}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="hypothesis examples per property")
    parser.add_argument("--atheris-seconds", type=int, default=60, help="libFuzzer time per target (0: skip atheris)")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args(argv)
    logging.getLogger("shared").setLevel(logging.ERROR)  # every refused signature is logged; millions of lines otherwise
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="janitor-fuzz-") as tmp:
        hypothesis = {**webhook_properties(args.examples, Path(tmp)), **other_properties(args.examples, Path(tmp))}
        atheris = {t: run_atheris(t, args.atheris_seconds, Path(tmp)) for t in TARGETS} if args.atheris_seconds else {}
        shutil.rmtree(tmp, ignore_errors=True)
    failures = {name: r["failure"] for name, r in hypothesis.items() if r["failure"]}
    crashes = {name: r["crash"] for name, r in atheris.items() if r["crash"]}
    report = {
        "examples_per_property": args.examples,
        "hypothesis": hypothesis,
        "atheris": atheris,
        "accepted_forgeries": sum("forgery accepted" in f for f in failures.values())
        + sum("forged header accepted" in c for c in crashes.values()),
        "responses_5xx": sum("5xx" in f for f in failures.values()),
        "violations": failures,
        "atheris_crashes": crashes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 1 if failures or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
