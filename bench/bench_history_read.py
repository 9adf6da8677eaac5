"""Reading a week of serving history: HistoryService.performance over 7 days of
per-minute history for 100 deployments of one model (what a report reads).

A week reads the hour table (24 x 7 x 100 = 16,800 rows) plus the partial hours at
its edges from minutes. Reference in the same run: the same read of one hour (per
minute: 60 x 100 = 6,000 rows). Goal (issue 11): a report over 7 days of history for
100 deployments renders in under 200 ms; this is the history part of it.

    python bench/bench_history_read.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchlib import emit, isolate_from_user_env, log, median, rounded
from modelhub.domain.monitoring import RollupRecord, Window
from modelhub.monitoring import sketches
from modelhub.services.monitoring.history import HistoryService
from modelhub.settings import Settings
from modelhub.stores.metadata.sql import SqlMetadataStore

GOAL_MS = 200.0
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def rollups(deployments: int, starts: list[datetime], rng: random.Random) -> list[RollupRecord]:
    encoded = []
    for _ in range(16):  # a few distinct latency shapes, reused
        sketch = sketches.new_sketch()
        for _ in range(500):
            sketch.add(rng.lognormvariate(1.0, 0.6))
        encoded.append(sketches.encode(sketch))
    return [
        RollupRecord(
            deployment=f"d{d}",
            model="m",
            version=1 + d % 2,
            start=start,
            requests=500,
            errors_by_kind={"internal": rng.randrange(3)},
            rows=500,
            batches=400,
            batch_rows=500,
            in_flight_peak=4,
            latency=rng.choice(encoded),
        )
        for d in range(deployments)
        for start in starts
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 deployments, 3 repeats")
    args = parser.parse_args()
    isolate_from_user_env()
    deployments = 10 if args.quick else 100
    repeats = 3 if args.quick else 7
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'history.db'}"
        store = SqlMetadataStore(url)
        hours = [NOW - timedelta(hours=h) for h in range(1, 24 * 7 + 1)]
        minutes = [NOW - timedelta(minutes=m) for m in range(1, 61)]
        log(f"writing {deployments * (len(hours) + len(minutes))} roll-ups")
        store.put_rollups(rollups(deployments, minutes, rng), rollups(deployments, hours, rng))
        settings = Settings(home=Path(tmp) / "home")
        history = HistoryService(settings, store, auth=None, clock=lambda: NOW)  # type: ignore[arg-type]  # reads only
        week, hour = Window.last(timedelta(days=7), NOW), Window.last(timedelta(hours=1), NOW)

        def timed(window: Window) -> float:
            start = time.perf_counter()
            summary = history.performance("m", window)
            elapsed = (time.perf_counter() - start) * 1000.0
            assert summary.requests > 0
            return elapsed

        week_ms = median([timed(week) for _ in range(repeats)])
        hour_ms = median([timed(hour) for _ in range(repeats)])
        store.close()
    emit(
        {
            "bench": "history_read",
            "deployments": deployments,
            "week_ms": rounded(week_ms, 1),
            "hour_ms": rounded(hour_ms, 1),
            "week_over_hour": rounded(week_ms / hour_ms, 2),
            "goal_ms": GOAL_MS,
            "met": week_ms < GOAL_MS,
        }
    )


if __name__ == "__main__":
    main()
