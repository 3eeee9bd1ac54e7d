"""One chaos worker process: the project's worker draining the shared queue, as `janitor work` does.

Started by `tests/chaos/harness.py`, never by hand. Settings come from the environment exactly as for
`janitor work` (GRAPH_BASE_URL, GRAPH_AUTH, JANITOR_DATA_DIR, JANITOR_POLICY, QUEUE_LOCK_SECONDS, QUEUE_BACKEND,
AUDIT_BACKEND, ...): the embedded queue and SQLite stores, or Service Bus and Table Storage.
Test-only knobs:

- CHAOS_PAUSE_AT=intent: the first command that will write a device stops right after its intent record is
  durable (before the Graph write); =write: right after its Graph write returned (before the outcome
  record). Either writes CHAOS_MARKER (JSON: command, device, pid) so the harness can SIGKILL the process
  inside that window, deterministically.
- CHAOS_AUDIT_BUSY_SECONDS: how long an audit append waits for the SQLite write lock before the store
  counts as down (AuditUnavailable); short, so a held lock is an outage the workers notice quickly.
- CHAOS_CONCURRENCY: commands handled at once; CHAOS_PARENT_PID: the harness (the worker exits when it is gone).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shared import bootstrap, settings
from shared.actions import DEVICE_WRITES
from shared.audit import SqliteAuditLog
from shared.ports import AuditLog
from shared.worker import Worker, drain, open_worker

AUDIT_FILE = "audit.sqlite3"


class Pause:
    """Stops the first matching command where it is, and says so in the marker file (once per process)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.fired = False

    async def hold(self, **facts: Any) -> None:
        if self.fired:
            return
        self.fired = True
        tmp = self.marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({**facts, "pid": os.getpid()}))
        tmp.replace(self.marker)  # atomic: the harness never reads half a marker
        await asyncio.Event().wait()  # until the harness kills this process


def pause_after_intent(worker: Worker, pause: Pause) -> None:
    """Wrap the worker's audit writer: after an intent for a device write is durable, hold that command."""
    append: Callable[..., Awaitable[None]] = worker.audit_writer.append

    async def append_then_hold(*entries: Any) -> None:
        await append(*entries)
        intent = next((e for e in entries if e.kind == "intent" and e.action in DEVICE_WRITES), None)
        if intent is not None and not pause.fired:
            await pause.hold(command_id=intent.command_id, device_object_id=intent.device_object_id, window="intent")

    worker.audit_writer.append = append_then_hold  # type: ignore[method-assign]


def pause_after_write(worker: Worker, pause: Pause) -> None:
    """Wrap the worker's device writer: after a Graph write went through, hold that command."""
    writer = worker.writer
    for name in ("patch", "delete"):
        send = getattr(writer, name)

        async def send_then_hold(object_id: str, *args: Any, _send: Any = send) -> Any:
            result = await _send(object_id, *args)
            if result.status < 300 and not pause.fired:
                await pause.hold(device_object_id=object_id, window="write", status=result.status)
            return result

        setattr(writer, name, send_then_hold)


async def exit_with_parent(parent: int) -> None:
    """A harness that dies (even by SIGKILL) must not leave its workers polling the queue forever."""
    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def open_audit() -> AuditLog:
    """The SQLite audit file with a short busy wait (a held lock is an outage noticed quickly), or the Table log."""
    if settings.choice("AUDIT_BACKEND", ("sqlite", "table")) == "table":
        return bootstrap.audit_log()
    busy = float(os.environ.get("CHAOS_AUDIT_BUSY_SECONDS", "1.0"))
    return SqliteAuditLog(settings.data_dir() / AUDIT_FILE, busy_timeout=busy)


async def main() -> None:
    watchdog = asyncio.create_task(exit_with_parent(int(os.environ.get("CHAOS_PARENT_PID", os.getppid()))))
    audit = open_audit()
    worker = open_worker(audit=audit)
    worker.digest = False  # a killed process would lose a held digest; per-device notices exercise mail too
    pause_at = os.environ.get("CHAOS_PAUSE_AT", "")
    if pause_at:
        pause = Pause(Path(os.environ["CHAOS_MARKER"]))
        {"intent": pause_after_intent, "write": pause_after_write}[pause_at](worker, pause)
    queue = bootstrap.queue_receiver()  # the embedded queue or Service Bus, as QUEUE_BACKEND says
    try:
        await drain(queue, worker, concurrency=int(os.environ.get("CHAOS_CONCURRENCY", "8")), until_empty=False, idle_wait=0.2)
    finally:
        watchdog.cancel()
        await queue.close()
        await worker.graph.close()
        await audit.close()
        for store in (worker.durable_budget, worker.lease):
            if store is not None:
                await store.close()


if __name__ == "__main__":
    asyncio.run(main())
