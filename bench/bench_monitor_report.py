"""The monitor report over 7 days of history for 100 deployments: under 200 ms.

One model (two versions), 100 deployments recorded in a real local home (registry,
deployment and every monitoring service over SQLite, as `build_services` wires them).
Its history goes through the real HistoryService's public method `record_minutes`,
an hour of minutes of every deployment at a time, as the supervisor's minutes would
arrive: 7 days of per-minute roll-ups per deployment (100 x 10,080 minutes, each with
requests, errors and a DDSketch of latencies), which the service keeps merged into
hour rows and the model's own rows. The week before (the trends' and degradation
tests' baseline) is recorded as one minute per hour carrying that hour's traffic:
a week's read uses the hour rows, which are the same either way, and filling a
second week by the minute would double a fill that already takes minutes.

Measured, median over many calls, with the real services:
  report:  MonitorService.report(model, "7d"): reading both windows' history from the
           store, drift, accuracy, alerts and cost sources, health, trends,
           degradation tests, recommendations
  json:    the report as the API returns it (model_dump_json)
  html:    the self-contained HTML page (monitoring/html_report.render)
  total = report + json + html, against the 200 ms target.
Reference, same run: `history_floor`, HistoryService.performance over both windows
alone (what any report over this history must read; lane history measured 12 ms for
one 7-day summary over 100 deployments in bench/bench_history_read.py).

    python bench/bench_monitor_report.py [--quick] [--iterations 30]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from benchlib import (
    emit,
    isolate_from_user_env,
    log,
    median,
    rounded,
    time_calls,
    write_small_safetensors,
)
from modelhub.domain.auth import Caller, Role
from modelhub.domain.monitoring import RollupRecord, Window
from modelhub.monitoring import sketches
from modelhub.monitoring.html_report import render
from modelhub.services import build_services
from modelhub.services.deployments import DeployRequest
from modelhub.services.monitoring.history import HistoryService
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings

TARGET_MS = 200.0
ADMIN = Caller(name="bench", role=Role.ADMIN)


def latency_shapes(rng: random.Random, slow: float) -> list[bytes]:
    """A few distinct encoded sketches of 16 latencies each, reused across minutes."""
    shapes = []
    for _ in range(16):
        sketch = sketches.new_sketch()
        for _ in range(16):
            sketch.add(rng.lognormvariate(1.5, 0.4) * slow)
        shapes.append(sketches.encode(sketch))
    return shapes


def record_history(
    history: HistoryService, deployments: int, days: int, now: datetime, seed: int = 7
) -> int:
    """Both windows' traffic through `record_minutes`; returns the records written.
    This week is 30 % slower than the week before (a degradation to find)."""
    rng = random.Random(seed)
    this_week, last_week = latency_shapes(rng, 1.3), latency_shapes(rng, 1.0)
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(days=days)
    written = 0

    def record(starts: list[datetime], shapes: list[bytes], requests: int) -> None:
        nonlocal written
        batch = [
            RollupRecord(
                deployment=f"dep-{index:03d}",
                model="intents",
                version=1 + index % 2,
                start=at,
                requests=requests,
                errors_by_kind={"internal": requests // 500} if rng.random() < 0.5 else {},
                rows=requests,
                batches=requests,
                batch_rows=requests,
                in_flight_peak=4,
                latency=rng.choice(shapes),
            )
            for at in starts
            for index in range(deployments)
        ]
        history.record_minutes(batch)
        written += len(batch)

    before = start - timedelta(days=days)
    record([before + timedelta(hours=h) for h in range(days * 24)], last_week, 3600)
    for hour in range(days * 24):
        first = start + timedelta(hours=hour)
        record([first + timedelta(minutes=m) for m in range(60)], this_week, 60)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 deployments, 1 day")
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    deployments, days = (5, 1) if args.quick else (100, 7)
    iterations = 5 if args.quick else args.iterations
    isolate_from_user_env()
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as root:
        settings = Settings(home=Path(root) / "home", serve_supervisor=False)
        services = build_services(settings)
        try:
            weights = Path(root) / "w.safetensors"
            write_small_safetensors(weights, 4096)
            log(f"registering a model and recording {deployments} deployments")
            for _ in range(2):
                services.registry.register(
                    RegisterRequest(name="intents", type="classification"), weights, "bench"
                )
            for index in range(deployments):
                ref = f"intents@{1 + index % 2}"
                services.deployments.deploy(ADMIN, DeployRequest(ref=ref, name=f"dep-{index:03d}"))
            log(f"recording {days} days of minutes for {deployments} deployments")
            now = services.history.clock()
            began = time.perf_counter()
            written = record_history(services.history, deployments, days, now)
            fill_s = time.perf_counter() - began
            log(f"{written} minute records in {fill_s:.0f} s")
            since = f"{days}d"
            monitor, history = services.monitor, services.history

            def floor() -> None:
                window = Window.last(timedelta(days=days), history.clock())
                assert history.performance("intents", window).requests > 0
                history.performance("intents", window.previous())

            report = monitor.report(ADMIN, "intents", since)
            floor_s = time_calls(floor, iterations, warmup=2)
            report_s = time_calls(lambda: monitor.report(ADMIN, "intents", since), iterations, 2)
            json_s = time_calls(report.model_dump_json, iterations, 2)
            html_s = time_calls(lambda: render(report), iterations, 2)
            started = time.perf_counter()
            page = render(monitor.report(ADMIN, "intents", since))
            once_ms = (time.perf_counter() - started) * 1000
        finally:
            services.close()
    total_ms = (median(report_s) + median(json_s) + median(html_s)) * 1000
    emit(
        {
            "bench": "monitor_report",
            "deployments": deployments,
            "days": days,
            "minute_records": written,
            "fill_s": rounded(fill_s, 1),
            "report_ms": rounded(median(report_s) * 1000),
            "json_ms": rounded(median(json_s) * 1000),
            "html_ms": rounded(median(html_s) * 1000),
            "history_floor_ms": rounded(median(floor_s) * 1000),
            "total_ms": rounded(total_ms),
            "one_report_and_page_ms": rounded(once_ms),
            "html_bytes": len(page),
            "requests": report.performance.requests if report.performance else None,
            "health": report.health.score,
            "recommendations": [r.kind for r in report.recommendations],
            "target_ms": TARGET_MS,
            "met": total_ms < TARGET_MS,
        }
    )


if __name__ == "__main__":
    main()
