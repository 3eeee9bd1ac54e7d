"""Opening the embedded SQLite stores (queue, audit log, budget, lease), which several processes share."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(path: str | Path, *, timeout: float) -> sqlite3.Connection:
    """A connection to `path` (created if missing) in WAL mode, autocommit, usable from worker threads.

    Switching a new file to WAL takes a lock that SQLite's busy handler does not wait for, so when several
    processes open the same new file at once the switch is retried until `timeout` seconds have passed.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        except BaseException:
            conn.close()
            raise
