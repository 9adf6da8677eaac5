"""Training workers' resource samples: a real busy process, a real SQLite store."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelhub.stores.metadata.sql import SqlMetadataStore
from modelhub.training.scheduler.resources import ResourceWatch

BUSY = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
BUSY += "import sys; sys.stdin.read()"  # then wait, alive, until the test closes stdin
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    yield s
    s.close()


def test_a_workers_cpu_seconds_and_memory_reach_the_run(store: SqlMetadataStore) -> None:
    worker = subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.PIPE)
    try:
        watch = ResourceWatch(store, every_seconds=0.05, gpu=False)
        deadline = time.monotonic() + 30
        while store.resource_totals("training", "5").cpu_seconds < 0.5:
            assert time.monotonic() < deadline, "the worker's CPU time was never sampled"
            watch.maybe_sample({5: worker.pid}, time.monotonic())
            time.sleep(0.05)
        totals = store.resource_totals("training", "5")
        assert totals.peak_rss_bytes > 2**20
        assert totals.gpu_seconds == 0.0  # no GPU asked for: no figure, no error
        before = len(store.list_resource_samples("training", ["5"], *EVER))
        watch.maybe_sample({5: worker.pid}, 0.0)  # not due yet: nothing new
        assert len(store.list_resource_samples("training", ["5"], *EVER)) == before
        watch.close()
    finally:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(timeout=30)


def test_a_gone_worker_is_skipped(store: SqlMetadataStore) -> None:
    watch = ResourceWatch(store, every_seconds=1.0, gpu=False)
    watch.maybe_sample({6: 2**22 + 12345}, time.monotonic())  # no such process
    assert store.resource_totals("training", "6").cpu_seconds == 0.0
