"""A long fuzz run of the webhook, the callback checks, the dsregcmd parser and the policy loader: prints JSON.

    python bench/fuzz.py [--examples 2000] [--atheris-seconds 60] [--json]

Two engines over the same oracles as tests/fuzz (tests/fuzz/probes.py):
- hypothesis, `--examples` per property (CI runs 15-400): forged and replayed signatures, hostile bodies
  (oversized, deeply nested, huge numbers, wrong types, lone surrogates, odd encodings), unicode tricks in
  device names, SSRF-shaped callback URLs and DNS answers, mangled dsregcmd output, policy YAML; and the
  attack classes of issue 12: code floods, audit pages, DNS rebinding, private ranges, guessed ticket ids,
  overflowing filters, unicode-digit timestamps, huge policy numbers, 503 bodies, CSV formulas, terminal
  escapes, look-alike identifiers, Graph URL paths;
- atheris (coverage-guided libFuzzer), `--atheris-seconds` per target, seeded with the repository's
  samples: ticket payload parsing, signature verification, dsregcmd parsing, policy loading.
Totals: accepted_forgeries, responses_5xx and tracebacks (all must be 0), the largest response and record
the runs produced (with their bounds), violations (each property's first failing input, shrunk), and per
property how the inputs were answered. Exit 1 when anything broke.
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
from functools import partial
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
    audit_pages,
    callback_addresses,
    callback_urls,
    code_floods,
    dsregcmd_texts,
    filter_params,
    forgeries,
    formula_cells,
    hostile_bodies,
    huge_policy_numbers,
    ip_addresses,
    lookalike_ids,
    path_values,
    policy_texts,
    rebinding_answers,
    terminal_texts,
    tricky_names,
    unicode_digit_headers,
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


def webhook_attacks(examples: int, tmp: Path) -> dict[str, dict[str, Any]]:
    """Issue 12's attacks on the webhook: guessed request ids, unicode-digit timestamps, look-alike identifiers."""
    runner = asyncio.Runner()
    rig = probes.WebhookRig(tmp)

    def sync(coro_fn: Callable[..., Any]) -> Callable[..., str]:
        return lambda *args: runner.run(coro_fn(*args))

    digits = valid_bodies().flatmap(lambda body: st.tuples(st.just(body), unicode_digit_headers(body)))
    ids = lookalike_ids().map(lambda case: case[:2])
    try:
        return {
            "guessed_request_ids": run_property(st.tuples(valid_bodies()), sync(partial(probes.probe_guessed_id, rig)), examples),
            "unicode_digit_timestamps": run_property(digits, sync(partial(probes.probe_forgery, rig)), examples),
            "lookalike_identifiers": run_property(ids, sync(partial(probes.probe_lookalike, rig)), examples),
        }
    finally:
        runner.run(rig.close())
        runner.close()


def _in_loop(coro_fn: Callable[..., Any]) -> Callable[..., str]:
    return lambda *args: asyncio.run(coro_fn(*args))


def other_attacks(examples: int, tmp: Path) -> dict[str, dict[str, Any]]:
    """Issue 12's other attack classes, one property each (CLI ones and audit pages: a tenth of the examples)."""
    rig = probes.AuditRig(tmp / "audit")
    few = max(20, examples // 10)
    flags = filter_params().map(lambda ps: [["list", *(f"--{name}={value}" for name, value in ps.items())]])
    policy_cli = partial(probes.probe_cli, ["policy", "check"], tmp / "big.yaml")
    plan: dict[str, tuple[st.SearchStrategy, Callable[..., str], int]] = {
        "code_floods": (st.tuples(code_floods()), probes.probe_diagnosis_size, examples),
        "audit_pages": (st.tuples(audit_pages), _in_loop(partial(probes.probe_audit_page, rig)), few),
        "dns_rebinding": (rebinding_answers, _in_loop(probes.probe_rebinding), examples),
        "private_ranges": (st.tuples(callback_addresses, st.booleans()), _in_loop(probes.probe_address), examples),
        "overflowing_filters": (st.tuples(filter_params()), _in_loop(partial(probes.probe_filters, rig)), examples),
        "overflowing_filters_cli": (flags, partial(probes.probe_audit_cli, rig), few),
        "huge_policy_numbers": (st.tuples(huge_policy_numbers()), probes.probe_policy, examples),
        "huge_policy_numbers_cli": (st.tuples(huge_policy_numbers()), policy_cli, few),
        "unavailable_bodies": (st.tuples(st.text(max_size=40), st.booleans()), _in_loop(probes.probe_unavailable), examples),
        "csv_formulas": (st.tuples(formula_cells()), probes.probe_csv, examples),
        "terminal_escapes": (st.tuples(terminal_texts()), partial(probes.probe_terminal, rig), few),
        "graph_paths": (st.tuples(path_values), _in_loop(probes.probe_graph_path), examples),
    }
    return {name: run_property(strategy, probe, n) for name, (strategy, probe, n) in plan.items()}


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
        hypothesis = {**webhook_properties(args.examples, Path(tmp)), **other_properties(args.examples, Path(tmp)),
                      **webhook_attacks(args.examples, Path(tmp) / "attacks"), **other_attacks(args.examples, Path(tmp))}
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
        "tracebacks": sum(not f.startswith("AssertionError") or "traceback" in f for f in failures.values())
        + sum("Traceback" in c for c in crashes.values()),
        "largest_response_bytes": probes.LARGEST["response_bytes"],
        "response_bound_bytes": probes.MAX_RESPONSE_BYTES,
        "largest_record_bytes": probes.LARGEST["record_bytes"],
        "record_bound_bytes": probes.MAX_DIAGNOSIS_BYTES,
        "violations": failures,
        "atheris_crashes": crashes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 1 if failures or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
