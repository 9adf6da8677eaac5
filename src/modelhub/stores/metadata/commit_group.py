"""Group commit: write transactions from concurrent threads share one durable commit.

On SQLite a commit is durable only once the write-ahead log is fsynced (the store
runs `synchronous=NORMAL`, which skips that fsync, for everything else). Work that
must survive a power cut the moment it returns (registering a version) goes through
a CommitGroup: the first caller becomes the leader and runs every piece of work
queued meanwhile in one transaction, each in its own savepoint (so one failure
rolls back only its own piece), then commits once with `synchronous=FULL`: one
fsync for the whole group. Each caller returns, or raises its own error, only
after that commit. On PostgreSQL every commit is durable and the server groups
commits itself, so each piece runs in its own transaction.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")


class _Pending(Generic[T]):
    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        self.context = contextvars.copy_context()  # the caller's request id, for its audit event
        self.wake = threading.Event()
        self.should_lead = False
        self.finished = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self, conn: Connection) -> None:
        try:
            with conn.begin_nested():
                self.result = self.context.run(self.work, conn)
        except Exception as exc:  # this piece's own failure; the group goes on
            self.error = exc


class CommitGroup:
    """Runs `work(conn)` in a write transaction that is durable when `run` returns.

    A leader commits one group, then hands leadership to the first caller queued
    meanwhile, so no caller waits on more than the group before its own.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.grouped = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()
        self._queue: list[_Pending[Any]] = []
        self._leading = False
        self.commits = 0  # durable commits made: fewer than pieces when groups form

    def pending(self) -> int:
        """Pieces of work queued for the next commit."""
        with self._lock:
            return len(self._queue)

    def run(self, work: Callable[[Connection], T]) -> T:
        if not self.grouped:
            with self.engine.connect() as conn, conn.begin():
                result = work(conn)
            self.commits += 1
            return result
        pending = _Pending(work)
        with self._lock:
            self._queue.append(pending)
            if not self._leading:
                self._leading = pending.should_lead = True
                pending.wake.set()
        while True:
            pending.wake.wait()
            with self._lock:
                pending.wake.clear()
                lead, pending.should_lead = pending.should_lead, False
                finished = pending.finished
            if finished:
                break
            if lead:
                self._lead_once()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _lead_once(self) -> None:
        with self._lock:
            group, self._queue = self._queue, []
        fatal: BaseException | None = None
        try:
            self._commit(group)
        except BaseException as exc:  # the commit failed: every piece of the group fails
            for pending in group:
                pending.error = pending.error or exc
            if not isinstance(exc, Exception):
                fatal = exc
        with self._lock:
            for pending in group:
                pending.finished = True
                pending.wake.set()
            if self._queue:
                self._queue[0].should_lead = True
                self._queue[0].wake.set()
            else:
                self._leading = False
        if fatal is not None:
            raise fatal

    def _commit(self, group: list[_Pending[Any]]) -> None:
        with self.engine.connect().execution_options(sqlite_write=True) as conn:
            # On the driver's connection: through SQLAlchemy it would open a transaction.
            sqlite = conn.connection.driver_connection
            assert sqlite is not None
            sqlite.execute("PRAGMA synchronous=FULL")
            try:
                with conn.begin():
                    for pending in group:
                        pending.run(conn)
                self.commits += 1
            finally:
                sqlite.execute("PRAGMA synchronous=NORMAL")
