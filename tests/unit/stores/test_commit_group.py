"""Group commit: concurrent writes share one durable commit; each fails on its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from modelhub.domain import context
from modelhub.stores.metadata.commit_group import CommitGroup
from modelhub.stores.metadata.engine import make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'group.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY, request TEXT)")
    yield engine
    engine.dispose()


def insert(x: int) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        conn.execute(
            text("INSERT INTO t VALUES (:x, :request)"),
            {"x": x, "request": context.request_id.get()},
        )
        return x

    return work


def wait_until(condition: Callable[[], bool], deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


def test_writes_queued_behind_a_commit_share_the_next_one(engine: Engine) -> None:
    group = CommitGroup(engine)
    started, release = threading.Event(), threading.Event()
    results: dict[int, object] = {}

    def first(conn: Connection) -> int:
        started.set()
        release.wait(30)  # holds the first group open while the others queue
        return insert(1)(conn)

    def call(key: int, work: Callable[[Connection], int], request_id: str) -> None:
        context.request_id.set(request_id)
        try:
            results[key] = group.run(work)
        except Exception as exc:  # collected and asserted below
            results[key] = exc

    threads = [threading.Thread(target=call, args=(1, first, "r1"))]
    threads[0].start()
    assert started.wait(30)
    # Three more writers arrive while the first group is still open; one of them fails.
    for key, work in ((2, insert(2)), (3, insert(1)), (4, insert(4))):
        threads.append(threading.Thread(target=call, args=(key, work, f"r{key}")))
        threads[-1].start()
    wait_until(lambda: group.pending() == 3)
    release.set()
    for thread in threads:
        thread.join(30)

    assert results[1] == 1 and results[2] == 2 and results[4] == 4
    assert "UNIQUE constraint failed" in str(results[3])  # only its own piece failed
    assert group.commits == 2  # four writes, two durable commits
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT x, request FROM t ORDER BY x")).all()
    assert [tuple(r) for r in rows] == [(1, "r1"), (2, "r2"), (4, "r4")]


def test_a_lone_write_commits_durably_and_leaves_the_connection_as_it_was(
    engine: Engine,
) -> None:
    group = CommitGroup(engine)
    assert group.run(insert(7)) == 7 and group.commits == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalar_one() == 7
        # Full fsync only for the group's commit; the pool's connections stay at NORMAL (1).
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1
