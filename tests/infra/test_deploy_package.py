"""The deployment package holds only the app: built as Azure builds it, it imports and indexes offline.

The package is the repository less what .funcignore names; its environment is requirements.txt alone
(tools/funcapp, built by `make test`). The simulator and the CLI are local tools: neither is in the package,
and none of their dependencies (typer, rich) is installed there, so an app import of either fails here.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep import ROOT

FUNCAPP_PYTHON = ROOT / "tools" / "funcapp" / "bin" / "python"
INDEXER = Path(__file__).with_name("index_app.py")
LOCAL_TOOLS = ("simulator", "janitor_cli")


def funcignore() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """.funcignore's rules as used here: a pattern matches a path or any of its leading directories."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(part, pattern) for p, part in zip(prefixes, parts, strict=True)
               for pattern in patterns)  # fmt: skip


def build_package(target: Path) -> list[str]:
    """Copy the tracked files .funcignore lets through into `target`; returns their paths."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    patterns = funcignore()
    kept = [path for path in tracked if not ignored(path, patterns) and (ROOT / path).exists()]
    for path in kept:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, target / path)
    return kept


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    if not FUNCAPP_PYTHON.exists():
        pytest.fail("tools/funcapp is missing: `make test` builds it from requirements.txt (make tools/funcapp/.installed)")
    target = tmp_path_factory.mktemp("package")
    return target, build_package(target)


def offline_env() -> dict[str, str]:
    """No proxy that works, no user site, no path into the repository: what the package alone provides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    dead = "http://127.0.0.1:9"  # a closed loopback port: any attempt to reach a network fails at once
    return env | {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "NO_PROXY": "", "PYTHONNOUSERSITE": "1"}


def test_the_package_holds_the_app_and_none_of_the_local_tools(package):
    _, files = package
    tops = {path.split("/")[0] for path in files}
    assert {"function_app.py", "host.json", "requirements.txt", "shared", "functions"} <= tops
    assert not tops & {*LOCAL_TOOLS, "tests", "bench", "infra", "docs", "tools"}, sorted(tops)


def test_requirements_hold_no_local_tool_dependency():
    names = {line.split("==")[0].strip().lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}  # fmt: skip
    assert not names & {"typer", "rich", "pytest", "hypothesis", "python-qpid-proton"}, names


def test_the_package_indexes_offline_with_only_requirements_installed(package):
    root, _ = package
    proc = subprocess.run(
        [str(FUNCAPP_PYTHON), "-I", str(INDEXER), str(root / "function_app.py")],
        capture_output=True, text=True, cwd=root, timeout=180, env=offline_env(),
    )  # fmt: skip
    assert proc.returncode == 0, f"the deployment package does not index:\n{proc.stderr[-3000:]}"
    names = sorted(f["name"] for f in json.loads(proc.stdout))
    assert {"nightly_scan", "remediation_worker", "ticket_intake", "audit_query"} <= set(names), names


def test_the_local_tools_cannot_be_imported_from_the_package(package):
    root, _ = package
    probe = "import sys, importlib.util as u, json; sys.path.insert(0, '.'); " \
            "print(json.dumps({m: u.find_spec(m) is not None for m in %r}))"
    proc = subprocess.run(
        [str(FUNCAPP_PYTHON), "-I", "-c", probe % ((*LOCAL_TOOLS, "typer", "rich"),)],
        capture_output=True, text=True, cwd=root, timeout=60, env=offline_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == dict.fromkeys((*LOCAL_TOOLS, "typer", "rich"), False)
