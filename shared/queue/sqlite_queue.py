"""The embedded queue: Service Bus semantics on one SQLite file, for local runs and tests.

Peek-lock with a lock timeout, delivery count, dead-lettering after `max_deliveries` (reason
`MaxDeliveryCountExceeded`), explicit dead-letter, scheduled messages, duplicate detection by message id
within a window. Several processes may share one file: WAL journal, and every state change runs in a
`BEGIN IMMEDIATE` transaction, so two receivers never lock the same message and a crash (even SIGKILL)
leaves either the old or the new state. A lock that expires makes the message receivable again.

One column drives receiving: `available_at` is when a message may next be received (its scheduled time,
or the end of its lock while locked). A message is receivable when `available_at <= now`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.errors import MessageLockLost
from shared.ports import DeadLetter, OutgoingMessage, ReceivedMessage
from shared.queue.outgoing import check_outgoing, scheduled_utc
from shared.sqlite_wal import connect_wal

log = logging.getLogger(__name__)

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    subject        TEXT,
    properties     TEXT    NOT NULL,
    enqueued_at    REAL    NOT NULL,
    available_at   REAL    NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token     TEXT    UNIQUE
);
CREATE INDEX IF NOT EXISTS messages_by_availability ON messages (available_at, seq);
CREATE INDEX IF NOT EXISTS messages_locked ON messages (available_at) WHERE lock_token IS NOT NULL;
CREATE TABLE IF NOT EXISTS dead_letters (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT    NOT NULL,
    body             BLOB    NOT NULL,
    subject          TEXT,
    properties       TEXT    NOT NULL,
    enqueued_at      REAL    NOT NULL,
    delivery_count   INTEGER NOT NULL,
    reason           TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    dead_lettered_at REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_message_ids (
    message_id TEXT PRIMARY KEY,
    sent_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_message_ids_by_time ON seen_message_ids (sent_at);
"""
_COLUMNS = "message_id, body, subject, properties, enqueued_at, delivery_count"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class SqliteQueue:
    """Embedded peek-lock queue; implements both QueueSender and QueueReceiver.

    `lock_seconds`, `max_deliveries` and `duplicate_window` mirror the Service Bus queue properties
    (LockDuration, MaxDeliveryCount, DuplicateDetectionHistoryTimeWindow). `poll_interval` paces a waiting
    receive; `busy_timeout` is how long a transaction waits for another process's write lock.
    `fsync_every_commit` trades speed for surviving power loss. `clock` returns epoch seconds (tests may
    pass their own; every process sharing the file must agree on time). A waiting receive measures its wait
    with `timer` (monotonic seconds) and pauses with `sleep`: tests pass virtual ones instead of waiting.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        lock_seconds: float = 60.0,
        max_deliveries: int = 10,
        duplicate_window: timedelta = timedelta(minutes=10),
        poll_interval: float = 0.05,
        busy_timeout: float = 30.0,
        fsync_every_commit: bool = False,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if lock_seconds <= 0:
            raise ValueError(f"lock_seconds must be positive, got {lock_seconds}")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {max_deliveries}")
        self.path = Path(path)
        self.lock_seconds = float(lock_seconds)
        self.max_deliveries = int(max_deliveries)
        self.duplicate_window = duplicate_window
        self._poll_interval = poll_interval
        self._clock = clock
        self._timer = timer
        self._sleep = sleep
        self._guard = threading.Lock()  # one connection, used from worker threads one at a time
        self._db: sqlite3.Connection | None = connect_wal(self.path, timeout=busy_timeout)
        # NORMAL (WAL): every commit survives a process crash, SIGKILL included; only a power cut can undo the
        # last commits (a message redelivered, a just-sent one lost until the next scan). FULL fsyncs each commit.
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync_every_commit else 'NORMAL'}")
        with self._transaction() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] not in (0, _SCHEMA_VERSION):
                raise RuntimeError(f"{self.path} holds a queue schema this version does not know; move it aside")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _transaction(self) -> Generator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so read-then-update cannot race another process."""
        with self._guard:
            if self._db is None:
                raise RuntimeError(f"queue {self.path} is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._guard:
            if self._db is None:
                raise RuntimeError(f"queue {self.path} is closed")
            return self._db.execute(sql, params).fetchall()

    async def __aenter__(self) -> SqliteQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        with self._guard:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ------------------------------------------------------------------ sending

    async def send(self, messages: Sequence[OutgoingMessage]) -> int:
        """Enqueue in one transaction. Ids seen within the duplicate window are dropped; all count as sent."""
        check_outgoing(messages)
        if messages:
            await asyncio.to_thread(self._send, list(messages))
        return len(messages)

    def _send(self, messages: list[OutgoingMessage]) -> None:
        now = self._clock()
        dropped = 0
        with self._transaction() as db:
            db.execute("DELETE FROM seen_message_ids WHERE sent_at < ?", (now - self.duplicate_window.total_seconds(),))
            for message in messages:
                if db.execute("INSERT OR IGNORE INTO seen_message_ids VALUES (?, ?)", (message.message_id, now)).rowcount == 0:
                    dropped += 1
                    continue
                scheduled = scheduled_utc(message)
                db.execute(
                    "INSERT INTO messages (message_id, body, subject, properties, enqueued_at, available_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        message.message_id,
                        bytes(message.body),
                        message.subject,
                        json.dumps(dict(message.properties)),
                        now,
                        max(now, scheduled.timestamp()) if scheduled else now,
                    ),
                )
        if dropped:
            log.info("queue %s: dropped %d duplicate message id(s) seen within %s", self.path, dropped, self.duplicate_window)

    # ------------------------------------------------------------------ receiving

    async def receive(self, max_messages: int = 1, wait_seconds: float = 0.0) -> list[ReceivedMessage]:
        """Lock up to `max_messages`; when none is available, poll until `wait_seconds` have passed."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        deadline = self._timer() + max(0.0, wait_seconds)
        while True:
            received = await asyncio.to_thread(self._receive, max_messages)
            remaining = deadline - self._timer()
            if received or remaining <= 0:
                return received
            await self._sleep(min(self._poll_interval, remaining))

    def _receive(self, max_messages: int) -> list[ReceivedMessage]:
        now = self._clock()
        # A cheap read first: idle pollers must not queue up for the write lock.
        if not self._read("SELECT 1 FROM messages WHERE available_at <= ? LIMIT 1", (now,)):
            return []
        received: list[ReceivedMessage] = []
        with self._transaction() as db:
            self._dead_letter_exhausted(db, now)
            rows = db.execute(
                f"SELECT seq, {_COLUMNS} FROM messages WHERE available_at <= ? ORDER BY available_at, seq LIMIT ?",
                (now, max_messages),
            ).fetchall()
            for seq, message_id, body, subject, properties, enqueued_at, delivery_count in rows:
                token = uuid.uuid4().hex
                db.execute(
                    "UPDATE messages SET lock_token = ?, available_at = ?, delivery_count = delivery_count + 1 WHERE seq = ?",
                    (token, now + self.lock_seconds, seq),
                )
                received.append(
                    ReceivedMessage(
                        message_id=message_id,
                        body=bytes(body),
                        delivery_count=delivery_count + 1,
                        lock_token=token,
                        subject=subject,
                        enqueued_at=_utc(enqueued_at),
                        properties=json.loads(properties),
                    )
                )
        return received

    def _dead_letter_exhausted(self, db: sqlite3.Connection, now: float) -> None:
        """Messages whose last allowed delivery timed out go to the dead letters (as Service Bus does)."""
        where = "lock_token IS NOT NULL AND available_at <= ? AND delivery_count >= ?"
        self._move_to_dead_letters(
            db, where, (now, self.max_deliveries), MAX_DELIVERY_COUNT_EXCEEDED,
            f"lock expired on the last of {self.max_deliveries} allowed deliveries", now,
        )

    @staticmethod
    def _move_to_dead_letters(
        db: sqlite3.Connection, where: str, params: Sequence[Any], reason: str, description: str, now: float
    ) -> int:
        db.execute(
            f"INSERT INTO dead_letters ({_COLUMNS}, reason, description, dead_lettered_at)"
            f" SELECT {_COLUMNS}, ?, ?, ? FROM messages WHERE {where} ORDER BY seq",
            (reason, description, now, *params),
        )
        return db.execute(f"DELETE FROM messages WHERE {where}", params).rowcount

    # ------------------------------------------------------------------ settling

    async def complete(self, message: ReceivedMessage) -> None:
        """Delete the message. Raises MessageLockLost when its lock expired (it may be redelivered)."""
        await asyncio.to_thread(self._settle, message, "complete", None, None)

    async def abandon(self, message: ReceivedMessage) -> None:
        """Release the lock now; the delivery counts, and the last allowed one dead-letters the message."""
        await asyncio.to_thread(self._settle, message, "abandon", None, None)

    async def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        """Move the message to the dead letters with why (it is never delivered again)."""
        if not reason:
            raise ValueError("dead_letter needs a reason")
        await asyncio.to_thread(self._settle, message, "dead_letter", reason, description or "")

    async def renew_lock(self, message: ReceivedMessage) -> None:
        """Extend the lock by `lock_seconds` from now (a long handler keeps its message, as Service Bus allows).

        Raises MessageLockLost when the lock already expired: the message may be with another receiver now.
        """
        await asyncio.to_thread(self._renew, message)

    def _renew(self, message: ReceivedMessage) -> None:
        now = self._clock()
        with self._transaction() as db:
            renewed = db.execute(
                "UPDATE messages SET available_at = ? WHERE lock_token = ? AND available_at > ?",
                (now + self.lock_seconds, message.lock_token, now),
            ).rowcount
            if not renewed:
                raise self._lock_lost(db, message, "renew the lock of")

    def _settle(self, message: ReceivedMessage, action: str, reason: str | None, description: str | None) -> None:
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT seq, delivery_count FROM messages WHERE lock_token = ? AND available_at > ?",
                (message.lock_token, now),
            ).fetchone()
            if row is None:
                raise self._lock_lost(db, message, action)
            seq, delivery_count = row
            if action == "complete":
                db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            elif action == "dead_letter":
                self._move_to_dead_letters(db, "seq = ?", (seq,), reason or "", description or "", now)
            elif delivery_count >= self.max_deliveries:
                self._move_to_dead_letters(
                    db, "seq = ?", (seq,), MAX_DELIVERY_COUNT_EXCEEDED,
                    f"abandoned on the last of {self.max_deliveries} allowed deliveries", now,
                )
            else:
                db.execute("UPDATE messages SET lock_token = NULL, available_at = ? WHERE seq = ?", (now, seq))

    def _lock_lost(self, db: sqlite3.Connection, message: ReceivedMessage, action: str) -> MessageLockLost:
        """Say why a settle found no live lock, so the caller knows whether the message will come back."""
        expired = db.execute("SELECT available_at FROM messages WHERE lock_token = ?", (message.lock_token,)).fetchone()
        what = f"cannot {action.replace('_', '-')} message {message.message_id!r}"
        if expired is not None:
            return MessageLockLost(
                f"{what}: its lock expired at {_utc(expired[0]).isoformat()} (lock {self.lock_seconds:g}s); "
                "it will be delivered again"
            )
        if db.execute("SELECT 1 FROM messages WHERE message_id = ?", (message.message_id,)).fetchone():
            return MessageLockLost(
                f"{what}: its lock expired and it was delivered again (this lock token is stale); nothing was changed"
            )
        if db.execute("SELECT 1 FROM dead_letters WHERE message_id = ?", (message.message_id,)).fetchone():
            return MessageLockLost(f"{what}: its lock expired and it has since been dead-lettered")
        return MessageLockLost(f"{what}: it is no longer in the queue (already completed)")

    # ------------------------------------------------------------------ inspection

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Dead-lettered messages, oldest first."""
        rows = self._read(
            "SELECT message_id, body, reason, description, delivery_count, dead_lettered_at FROM dead_letters"
            " ORDER BY seq LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [
            DeadLetter(message_id=m, body=bytes(b), reason=r, description=d, delivery_count=c, dead_lettered_at=_utc(t))
            for m, b, r, d, c, t in rows
        ]

    def counts(self) -> dict[str, int]:
        """active (receivable now), scheduled (not yet due), locked (under a live lock), dead_lettered."""
        now = self._clock()
        with self._transaction() as db:
            self._dead_letter_exhausted(db, now)
            active, scheduled, locked = db.execute(
                "SELECT COALESCE(SUM(available_at <= :now), 0),"
                " COALESCE(SUM(available_at > :now AND lock_token IS NULL), 0),"
                " COALESCE(SUM(available_at > :now AND lock_token IS NOT NULL), 0) FROM messages",
                {"now": now},
            ).fetchone()
            dead = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        return {"active": active, "scheduled": scheduled, "locked": locked, "dead_lettered": dead}
