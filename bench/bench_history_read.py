"""Reading a week of serving history: HistoryService.performance over 7 days of
per-minute history for 100 deployments of one model (what a report reads).

A model's week reads its own hour rows (the merge of its deployments', kept as
minutes arrive: 24 x 7 per version, however many deployments), the partial hours at
the edges from minutes, and the week before for the trend. Reference in the same run:
the same read of one hour (per minute), and one deployment's week. Goal (issue 11): a
report over 7 days of history for 100 deployments renders in under 200 ms; this is the
history part of it.

    python bench/bench_history_read.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchlib import emit, isolate_from_user_env, log, median, rounded
from modelhub.domain.monitoring import ALL_DEPLOYMENTS, RollupRecord, Window
from modelhub.monitoring import sketches
from modelhub.monitoring.rollup import combine
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


def model_rows(records: list[RollupRecord]) -> list[RollupRecord]:
    """The model's own rows (deployment ALL_DEPLOYMENTS): the merge of its deployments',
    as HistoryService.record_minutes keeps them."""
    groups: dict[tuple[int, datetime], list[RollupRecord]] = {}
    for record in records:
        groups.setdefault((record.version, record.start), []).append(record)
    return [replace(combine(group), deployment=ALL_DEPLOYMENTS) for group in groups.values()]


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
        # Two weeks of hours: the week before is read too, for the trend.
        hours = [NOW - timedelta(hours=h) for h in range(1, 24 * 14 + 1)]
        minutes = [NOW - timedelta(minutes=m) for m in range(1, 121)]
        log(f"writing {deployments * (len(hours) + len(minutes))} roll-ups")
        minute_rows = rollups(deployments, minutes, rng)
        hour_rows = rollups(deployments, hours, rng)
        store.put_rollups(
            [*minute_rows, *model_rows(minute_rows)], [*hour_rows, *model_rows(hour_rows)]
        )
        settings = Settings(home=Path(tmp) / "home")
        history = HistoryService(settings, store, auth=None, clock=lambda: NOW)  # type: ignore[arg-type]  # reads only
        week, hour = Window.last(timedelta(days=7), NOW), Window.last(timedelta(hours=1), NOW)

        def timed(window: Window, deployment: str | None = None) -> float:
            start = time.perf_counter()
            summary = history.performance("m", window, deployment=deployment)
            elapsed = (time.perf_counter() - start) * 1000.0
            assert summary.requests > 0
            return elapsed

        week_ms = median([timed(week) for _ in range(repeats)])
        hour_ms = median([timed(hour) for _ in range(repeats)])
        one_ms = median([timed(week, "d1") for _ in range(repeats)])
        store.close()
    emit(
        {
            "bench": "history_read",
            "deployments": deployments,
            "week_ms": rounded(week_ms, 1),
            "hour_ms": rounded(hour_ms, 1),
            "week_over_hour": rounded(week_ms / hour_ms, 2),
            "week_one_deployment_ms": rounded(one_ms, 1),
            "goal_ms": GOAL_MS,
            "met": week_ms < GOAL_MS,
        }
    )


if __name__ == "__main__":
    main()
