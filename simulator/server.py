"""Serving a Tenant over HTTP on loopback: in the caller's event loop, in a thread, or in a child process.

- `run_simulator(tenant, ...)`: async context manager for async tests (same loop as the test).
- `SimulatorThread(tenant, ...)`: the same server in a background thread with its own loop, for sync callers.
- `SimulatorProcess(devices=..., seed=...)`: a separate process (`janitor simulate`), for benchmarks, so the
  server does not compete with the measured client for the GIL.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from simulator.auth import BadToken, caller_from
from simulator.faults import Faults
from simulator.limits import Limits
from simulator.pipeline import VERSIONS, Pipeline, Stats
from simulator.tenant import Tenant
from simulator.wire import JSON_TYPE, GraphRequest, error_body

_MAX_BODY = 16 * 1024 * 1024


@dataclass
class RunningSimulator:
    """A simulator that is serving. `faults` can be changed while it runs; `stats` counts what it served."""

    tenant: Tenant
    base_url: str  # "http://127.0.0.1:<port>/v1.0"
    host: str
    port: int
    pipeline: Pipeline

    @property
    def faults(self) -> Faults:
        return self.pipeline.faults

    @property
    def stats(self) -> Stats:
        return self.pipeline.stats

    @property
    def limits(self) -> Limits:
        return self.pipeline.limits

    def reset_stats(self) -> None:
        self.pipeline.stats = Stats()


def _app(pipeline: Pipeline) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        """Serve at once (charged to the budget on arrival, as Graph does), then hold the answer for the latency."""
        stats = pipeline.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            response = await serve(request)
            delay = pipeline.faults.latency_s(f"{request.method} {request.rel_url.raw_path[5:]}")
            if delay:
                await pipeline.sleep(delay)
            return response
        finally:
            stats.in_flight -= 1

    async def serve(request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        headers = {k.lower(): v for k, v in request.headers.items()}
        client_request_id = headers.get("client-request-id")
        try:
            body = await request.read() if request.can_read_body else None
        except ConnectionResetError:  # the client died mid-request (a killed worker): nobody to answer
            return web.Response(status=400)
        try:
            caller = caller_from(headers.get("authorization"))
        except BadToken as exc:
            req_id = os.urandom(16).hex()
            return _http_error(401, "InvalidAuthenticationToken", str(exc), req_id, client_request_id)
        version = next((v for v in VERSIONS if raw_path == f"/{v}" or raw_path.startswith(f"/{v}/")), None)
        if version is None:
            req_id = os.urandom(16).hex()
            return _http_error(
                404,
                "BadRequest",
                f"This simulator serves Graph v1.0 (and a few beta endpoints under /beta); got {raw_path!r}.",
                req_id,
                client_request_id,
            )
        req = GraphRequest(
            method=request.method,
            path=unquote(raw_path[len(version) + 1 :]) or "/",
            version=version,
            query=dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)),
            headers=headers,
            body=body,
            caller=caller,
            client_request_id=client_request_id,
        )
        response = pipeline.handle(req)
        out_headers = dict(response.headers)
        if response.body is not None:
            out_headers["Content-Type"] = response.content_type
        return web.Response(status=response.status, body=response.body, headers=out_headers)

    app = web.Application(client_max_size=_MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _http_error(status: int, code: str, message: str, request_id: str, client_request_id: str | None) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(code, message, request_id, client_request_id),
        headers={"Content-Type": JSON_TYPE, "request-id": request_id, "client-request-id": client_request_id or request_id},
    )


@asynccontextmanager
async def run_simulator(
    tenant: Tenant,
    *,
    limits: Limits | None = None,
    faults: Faults | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
) -> AsyncIterator[RunningSimulator]:
    """Serve `tenant` on http://host:port/v1.0 (port 0: a free one) for the duration of the block."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or 0 for any free port") from exc
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown}:{bound}/v1.0"
    pipeline = Pipeline(tenant, base_url, limits or Limits(), faults or Faults())
    runner = web.AppRunner(_app(pipeline), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield RunningSimulator(tenant=tenant, base_url=base_url, host=host, port=bound, pipeline=pipeline)
    finally:
        await runner.cleanup()
        sock.close()


class SimulatorThread:
    """`run_simulator` in a background thread with its own event loop: `with SimulatorThread(t) as sim: ...`."""

    def __init__(
        self,
        tenant: Tenant,
        *,
        limits: Limits | None = None,
        faults: Faults | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.tenant = tenant
        self._kwargs: dict[str, Any] = {"limits": limits, "faults": faults, "port": port, "host": host}
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.running: RunningSimulator | None = None

    def start(self) -> RunningSimulator:
        self._thread = threading.Thread(target=self._run, name="graph-simulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self.running is not None
        return self.running

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with run_simulator(self.tenant, **self._kwargs) as sim:
                self.running = sim
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> RunningSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self.running is not None, "the simulator thread is not running"
        return self.running.base_url

    @property
    def faults(self) -> Faults:
        assert self.running is not None
        return self.running.faults

    @property
    def stats(self) -> Stats:
        assert self.running is not None
        return self.running.stats


class SimulatorProcess:
    """`janitor simulate` in a child process (generation happens there); `with SimulatorProcess(...) as sim:`.

    Regenerate the same tenant in the parent (same devices, seed, profile and `now`) when the ground truth is
    needed. Faults are fixed at start here (no live changes across processes).
    """

    def __init__(
        self,
        *,
        devices: int,
        seed: int = 7,
        profile: str = "mixed",
        now: datetime | None = None,
        limits: Limits | None = None,
        faults: Faults | None = None,
        port: int = 0,
        timeout: float = 600,
        irregular_device_ids: int = 0,
    ) -> None:
        self.args = [
            "--devices",
            str(devices),
            "--seed",
            str(seed),
            "--profile",
            profile,
            "--port",
            str(port),
            "--parent-pid",
            str(os.getpid()),
            "--irregular-device-ids",
            str(irregular_device_ids),
        ]
        if now is not None:
            self.args += ["--now", now.isoformat()]
        if limits is not None:
            self.args += ["--limits-json", json.dumps(asdict(limits))]
        if faults is not None:
            knobs = {k: v for k, v in asdict(faults).items() if not k.startswith("_")}
            self.args += ["--faults-json", json.dumps(knobs)]
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> SimulatorProcess:
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "janitor_cli.simulate", *self.args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(timeout=self.timeout)
            raise RuntimeError(f"the simulator process exited with status {code} before it was ready (see its stderr)")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def base_url(self) -> str:
        return self.info["base_url"]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid
