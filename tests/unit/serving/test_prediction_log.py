"""The replica's prediction log: sampling, the bounded queue, Parquet files, rotation,
private inputs. No thread runs here: `drain` does the writer's work, and the clock and
the random draw are injected."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from modelhub.serving.predlog import Entry, LogTarget, PredictionLog

SECRET = "my-ssn-123-45-6789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def target(
    rate: float = 1.0, cap: int = 10_000, private: frozenset[str] = frozenset()
) -> LogTarget:
    return LogTarget("web", "intents", rate, cap, {1: private})


def entry(i: int, rows: int = 1) -> Entry:
    return Entry(
        name="web",
        version=1,
        request_id=f"r{i}",
        at=1_767_000_000.0 + i,
        latency_ms=1.5,
        rows=rows,
        inputs={
            "x": np.full((rows, 4), float(i), np.float32),
            "note": np.array([SECRET] * rows, dtype=object),
        },
        outputs={"label": np.array([f"c{i % 3}"] * rows, dtype=object)},
    )


def files(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.parquet"))


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, queue_size=3)
    log.configure([target()])
    accepted = [log.offer(entry(i)) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert log.stats()["dropped"] == 2
    log.flush()
    assert log.stats()["logged"] == 3
    assert log.offer(entry(9)) is True  # room again once the writer took the queue
    # The same counters per deployment version, which the platform sums over replicas.
    assert log.sample("web", 2) is True
    assert log.stats()["versions"] == [
        {"deployment": "web", "version": 1, "sampled": 0, "capped": 0, "dropped": 2, "logged": 3},
        {"deployment": "web", "version": 2, "sampled": 1, "capped": 0, "dropped": 0, "logged": 0},
    ]


def test_files_rotate_by_size(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, max_file_bytes=2000)
    log.configure([target()])
    for i in range(30):
        log.offer(entry(i))
    log.drain()
    closed = files(tmp_path)
    assert len(closed) >= 2
    assert not list(tmp_path.glob("*.partial"))
    rows = sum(pq.read_table(p).num_rows for p in closed)
    log.flush()
    assert sum(pq.read_table(p).num_rows for p in files(tmp_path)) == 30 > rows


def test_files_rotate_by_time(tmp_path: Path) -> None:
    clock = Clock()
    log = PredictionLog(tmp_path, max_file_seconds=60, monotonic=clock)
    log.configure([target()])
    log.offer(entry(1))
    log.drain()
    clock.now += 59
    log.drain()
    assert files(tmp_path) == []
    clock.now += 1
    log.drain()
    assert len(files(tmp_path)) == 1


def test_a_file_holds_ids_times_predictions_inputs_and_its_version(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    log.configure([target()])
    log.offer(entry(1, rows=2))
    log.offer(entry(2))
    log.flush()
    (only,) = files(tmp_path)
    table = pq.read_table(only)
    meta = table.schema.metadata
    assert meta[b"modelhub.model"] == b"intents" and meta[b"modelhub.version"] == b"1"
    data = table.to_pydict()
    assert data["request_id"] == ["r1", "r1", "r2"]
    assert data["row"] == [0, 1, 0]
    assert data["prediction"] == ['"c1"', '"c1"', '"c2"']
    assert data["input.x"][2] == [2.0, 2.0, 2.0, 2.0]


def test_private_inputs_are_never_written(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    log.configure([target(private=frozenset({"note"}))])
    for i in range(5):
        log.offer(entry(i))
    log.flush()
    (only,) = files(tmp_path)
    data = pq.read_table(only).to_pydict()
    assert data["input.note"] == [None] * 5
    assert data["input.x"][0] == [0.0] * 4
    assert SECRET.encode() not in only.read_bytes()


def test_without_private_inputs_the_text_is_written(tmp_path: Path) -> None:
    # The other side of the test above: the secret does reach the file when not private.
    log = PredictionLog(tmp_path)
    log.configure([target()])
    log.offer(entry(1))
    log.flush()
    assert pq.read_table(files(tmp_path)[0]).to_pydict()["input.note"] == [SECRET]


def test_sampling_follows_the_rate_with_a_fixed_seed(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, draw=random.Random(7).random)
    log.configure([target(rate=0.1)])
    sampled = sum(log.sample("web", 1) for _ in range(20_000))
    # Binomial(20000, 0.1): sd 42; 5 sd either side.
    assert 1790 <= sampled <= 2210
    assert log.sample("other", 1) is False


def test_the_cap_per_minute_holds_and_resets_the_next_minute(tmp_path: Path) -> None:
    clock = Clock()
    log = PredictionLog(tmp_path, monotonic=clock)
    log.configure([target(rate=1.0, cap=5)])
    assert sum(log.sample("web", 1) for _ in range(50)) == 5
    assert log.stats()["capped"] == 45
    clock.now += 60
    assert sum(log.sample("web", 1) for _ in range(50)) == 5


@pytest.mark.parametrize("rate", [0.0])
def test_a_zero_rate_logs_nothing(tmp_path: Path, rate: float) -> None:
    log = PredictionLog(tmp_path, draw=random.Random(1).random)
    log.configure([target(rate=rate)])
    assert not any(log.sample("web", 1) for _ in range(1000))
