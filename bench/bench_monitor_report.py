"""The monitor report over 7 days of history for 100 deployments: under 200 ms.

One model, 100 deployments recorded in a real local home (registry and deployment
services over SQLite). Its history is 7 days of hourly roll-ups per deployment
(100 x 168 = 16,800 hour rows, each with requests, errors and a DDSketch of
latencies), and the 7 days before them for the trends and the degradation tests.

Measured, median over many calls:
  report: MonitorService.report(model, "7d") over summaries already merged (the
          registry and 100 deployments read, records built, health, trends,
          recommendations): the report's own work
  json:   the report as the API returns it (model_dump_json)
  html:   the self-contained HTML page (monitoring/html_report.render)
  report_own = report + json + html
Reference, same run: `history_floor`, reading and merging both windows' hour rows
alone (what any report over this history must do; here in memory with ddsketch's
merge). total = history_floor + report_own, against the 200 ms target.

WAITS ON lane history: `SyntheticHistory` below stands in for `HistoryService`
(its signature exactly); once that lands, fill a store through HistoryService's
public methods with the same rows and pass the real service instead, so the
figure includes the hourly roll-up read from the metadata store.

    python bench/bench_monitor_report.py [--quick] [--iterations 30]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ddsketch import DDSketch

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
from modelhub.domain.monitoring import Window
from modelhub.monitoring.html_report import render
from modelhub.services import build_services, monitor_objectives
from modelhub.services.deployments import DeployRequest
from modelhub.services.monitoring.report import MonitorService, MonitorSources
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings

TARGET_MS = 200.0
NOW = datetime(2026, 12, 7, tzinfo=UTC)
ADMIN = Caller(name="bench", role=Role.ADMIN)


@dataclass(frozen=True)
class HourRow:
    deployment: str
    version: int
    at: datetime
    requests: int
    errors: int
    sketch: DDSketch


@dataclass(frozen=True)
class Point:
    at: datetime
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class VersionSummary:
    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Summary:
    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    throughput_rps: float
    latency_sketch: DDSketch
    per_version: dict[int, VersionSummary]
    minutes: list[Point]
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    in_flight_peak: int = 4
    cpu_percent: float | None = 35.0
    rss_bytes: int | None = 512 * 1024 * 1024
    gpu_util: float | None = None
    gpu_memory_bytes: int | None = None


def _quantile(sketch: DDSketch, q: float) -> float | None:
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)


class SyntheticHistory:
    """What HistoryService.performance returns, computed from in-memory hour rows."""

    def __init__(self, rows: list[HourRow]) -> None:
        self.rows = sorted(rows, key=lambda row: row.at)

    def performance(
        self, model: str, window: Window, version: int | None = None, deployment: str | None = None
    ) -> Summary:
        merged = DDSketch()
        versions: dict[int, DDSketch] = {}
        hours: dict[datetime, list] = {}  # type: ignore[type-arg]
        counts: dict[int, list[int]] = {}
        requests = errors = 0
        for row in self.rows:
            if not window.start <= row.at < window.end:
                continue
            if (version is not None and row.version != version) or (
                deployment is not None and row.deployment != deployment
            ):
                continue
            merged.merge(row.sketch)
            requests += row.requests
            errors += row.errors
            if row.version not in versions:
                versions[row.version], counts[row.version] = DDSketch(), [0, 0]
            versions[row.version].merge(row.sketch)
            tally = counts[row.version]
            tally[0] += row.requests
            tally[1] += row.errors
            if row.at not in hours:
                hours[row.at] = [0, 0, DDSketch()]
            hour = hours[row.at]
            hour[0] += row.requests
            hour[1] += row.errors
            hour[2].merge(row.sketch)
        per_version = {
            number: VersionSummary(
                counts[number][0],
                counts[number][1],
                counts[number][1] / counts[number][0] if counts[number][0] else 0.0,
                _quantile(sketch, 0.5),
                _quantile(sketch, 0.99),
            )
            for number, sketch in versions.items()
        }
        series = [
            Point(at, r, e, _quantile(s, 0.5), _quantile(s, 0.95), _quantile(s, 0.99))
            for at, (r, e, s) in sorted(hours.items())
        ]
        return Summary(
            requests=requests,
            errors=errors,
            error_rate=errors / requests if requests else 0.0,
            p50_ms=_quantile(merged, 0.5),
            p95_ms=_quantile(merged, 0.95),
            p99_ms=_quantile(merged, 0.99),
            throughput_rps=requests / window.seconds,
            latency_sketch=merged,
            per_version=per_version,
            minutes=series,
        )


class RecordedHistory:
    """The same summaries, computed once: the report's own work without history's."""

    def __init__(self, history: SyntheticHistory, window: Window) -> None:
        self.answers = {
            window: history.performance("intents", window),
            window.previous(): history.performance("intents", window.previous()),
        }

    def performance(
        self, model: str, window: Window, version: int | None = None, deployment: str | None = None
    ) -> Summary:
        return self.answers[window]


def hour_rows(deployments: int, days: int, seed: int = 7) -> list[HourRow]:
    """Both windows' rows: `days` of hours before NOW and the `days` before those."""
    rng = random.Random(seed)
    rows = []
    hours = 2 * days * 24
    for index in range(deployments):
        for hour in range(hours):
            sketch = DDSketch()
            slow = 1.3 if hour >= hours // 2 else 1.0  # this week is 30 % slower
            for _ in range(16):
                sketch.add(rng.lognormvariate(1.5, 0.4) * slow)
            requests = 3600 + rng.randrange(600)
            rows.append(
                HourRow(
                    f"dep-{index:03d}",
                    1 + index % 2,
                    NOW - timedelta(hours=hours - hour),
                    requests,
                    requests // 500,
                    sketch,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 deployments, 1 day")
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    deployments, days = (10, 1) if args.quick else (100, 7)
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
            log(f"building {deployments * days * 24 * 2} hour rows with sketches")
            history = SyntheticHistory(hour_rows(deployments, days))
            since = f"{days}d"
            window = Window.last(timedelta(days=days), NOW)

            def monitor_over(source: SyntheticHistory | RecordedHistory) -> MonitorService:
                return MonitorService(
                    services.registry,
                    services.deployments,
                    services.auth,
                    monitor_objectives(settings),
                    MonitorSources(history=source),
                    clock=lambda: NOW,
                )

            monitor = monitor_over(history)
            own = monitor_over(RecordedHistory(history, window))

            def floor() -> None:
                history.performance("intents", window)
                history.performance("intents", window.previous())

            report = monitor.report(ADMIN, "intents", since)
            floor_s = time_calls(floor, iterations, warmup=2)
            report_s = time_calls(lambda: own.report(ADMIN, "intents", since), iterations, 2)
            json_s = time_calls(report.model_dump_json, iterations, 2)
            html_s = time_calls(lambda: render(report), iterations, 2)
            started = time.perf_counter()
            page = render(monitor.report(ADMIN, "intents", since))
            once_ms = (time.perf_counter() - started) * 1000
        finally:
            services.close()
    own_ms = (median(report_s) + median(json_s) + median(html_s)) * 1000
    total_ms = own_ms + median(floor_s) * 1000
    emit(
        {
            "bench": "monitor_report",
            "deployments": deployments,
            "days": days,
            "hour_rows_per_window": deployments * days * 24,
            "report_ms": rounded(median(report_s) * 1000),
            "json_ms": rounded(median(json_s) * 1000),
            "html_ms": rounded(median(html_s) * 1000),
            "report_own_ms": rounded(own_ms),
            "history_floor_ms": rounded(median(floor_s) * 1000),
            "total_ms": rounded(total_ms),
            "one_report_and_page_ms": rounded(once_ms),
            "html_bytes": len(page),
            "health": report.health.score,
            "recommendations": [r.kind for r in report.recommendations],
            "target_ms": TARGET_MS,
            "met": total_ms < TARGET_MS,
            "report_own_met": own_ms < TARGET_MS,
            "waits_on": "lane history: HistoryService over a store filled through its methods",
        }
    )


if __name__ == "__main__":
    main()
