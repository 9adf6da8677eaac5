"""Performance summaries: figures, per-version figures, series and trends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.monitoring import ResourceFigures, RollupColumns, RollupRecord, Window
from modelhub.monitoring import sketches
from modelhub.monitoring.payloads import summary_from_json, summary_to_json
from modelhub.monitoring.performance import summarise, trend

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(version: int, minute: int, requests: int, errors: int, latency: float) -> RollupRecord:
    sketch = sketches.new_sketch()
    for _ in range(requests):
        sketch.add(latency)
    return RollupRecord(
        deployment="d",
        model="m",
        version=version,
        start=T0 + timedelta(minutes=minute),
        requests=requests,
        errors_by_kind={"internal": errors} if errors else {},
        rows=requests * 2,
        batches=requests,
        batch_rows=requests * 2,
        in_flight_peak=minute + 1,
        latency=sketches.encode(sketch),
    )


def test_window_previous_and_seconds() -> None:
    window = Window.last(timedelta(hours=1), T0)
    assert window == Window(T0 - timedelta(hours=1), T0)
    assert window.previous() == Window(T0 - timedelta(hours=2), T0 - timedelta(hours=1))
    assert window.seconds == 3600.0


def test_summary_figures_versions_series_and_trend() -> None:
    window = Window(T0, T0 + timedelta(minutes=10))
    records = [record(1, 0, 100, 2, 10.0), record(2, 0, 50, 0, 30.0), record(1, 1, 50, 1, 10.0)]
    previous = [record(1, -10, 100, 0, 10.0)]
    summary = summarise(
        "m",
        window,
        RollupColumns.of(records),
        RollupColumns.of(previous),
        ResourceFigures(cpu_percent=50.0),
        "minute",
    )
    assert (summary.requests, summary.errors) == (200, 3)
    assert summary.error_rate == pytest.approx(0.015)
    assert summary.throughput_rps == pytest.approx(200 / 600)
    assert summary.p50_ms == pytest.approx(10.0, rel=0.01)
    assert summary.p99_ms == pytest.approx(30.0, rel=0.01)
    assert summary.in_flight_peak == 2
    assert summary.mean_batch_rows == pytest.approx(2.0)
    assert summary.versions[1].requests == 150 and summary.versions[2].requests == 50
    assert [p.requests for p in summary.series] == [150, 50]
    assert summary.trend["requests"].direction == "up"
    assert summary.trend["requests"].change == pytest.approx(1.0)
    assert summary.trend["error_rate"].direction == "up"
    assert summary.cpu_percent == 50.0


def test_an_empty_window_summarises_to_zeros_and_unknown_trends() -> None:
    window = Window(T0, T0 + timedelta(minutes=1))
    summary = summarise("m", window, RollupColumns(), RollupColumns(), ResourceFigures(), "minute")
    assert (summary.requests, summary.p99_ms, summary.series) == (0, None, [])
    assert {t.direction for t in summary.trend.values()} == {"unknown"}


def test_trend_directions() -> None:
    assert trend(110.0, 100.0).direction == "up"
    assert trend(90.0, 100.0).direction == "down"
    assert trend(102.0, 100.0).direction == "flat"
    assert trend(1.0, 0.0).direction == "up"
    assert trend(None, 1.0).direction == "unknown"


def test_the_summary_json_round_trips_with_its_sketch() -> None:
    window = Window(T0, T0 + timedelta(minutes=5))
    current = RollupColumns.of([record(1, 0, 10, 1, 5.0)])
    summary = summarise("m", window, current, RollupColumns(), ResourceFigures(), "minute")
    back = summary_from_json(summary_to_json(summary))
    assert back.to_json() == summary.to_json()
    assert back.latency_sketch.count == 10
