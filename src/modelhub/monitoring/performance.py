"""A performance summary from stored roll-ups: figures, per-version figures, a series
and the trend of each figure against the previous window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ddsketch import DDSketch

from modelhub.domain.monitoring import (
    Figures,
    PerformancePoint,
    PerformanceSummary,
    ResourceFigures,
    RollupRecord,
    Trend,
    Window,
)
from modelhub.monitoring import sketches

FLAT_WITHIN = 0.05  # a relative change smaller than this is "flat"
TREND_FIGURES = ("requests", "error_rate", "throughput_rps", "p50_ms", "p95_ms", "p99_ms")


def figures(records: Sequence[RollupRecord], window: Window) -> tuple[Figures, DDSketch]:
    sketch = sketches.merge_all(sketches.decode(r.latency) for r in records)
    requests = sum(r.requests for r in records)
    errors: dict[str, int] = {}
    for record in records:
        for kind, count in record.errors_by_kind.items():
            errors[kind] = errors.get(kind, 0) + count
    error_count = sum(errors.values())
    batches = sum(r.batches for r in records)
    return (
        Figures(
            requests=requests,
            errors=error_count,
            error_rate=error_count / requests if requests else 0.0,
            errors_by_kind=dict(sorted(errors.items())),
            rows=sum(r.rows for r in records),
            throughput_rps=requests / window.seconds,
            p50_ms=sketches.quantile(sketch, 0.50),
            p95_ms=sketches.quantile(sketch, 0.95),
            p99_ms=sketches.quantile(sketch, 0.99),
            in_flight_peak=max((r.in_flight_peak for r in records), default=0),
            mean_batch_rows=sum(r.batch_rows for r in records) / batches if batches else None,
        ),
        sketch,
    )


def trend(current: float | None, previous: float | None) -> Trend:
    if current is None or previous is None:
        return Trend(current, previous, None, "unknown")
    if previous == 0:
        return Trend(current, previous, None, "flat" if current == 0 else "up")
    change = (current - previous) / previous
    direction = "flat" if abs(change) < FLAT_WITHIN else ("up" if change > 0 else "down")
    return Trend(current, previous, change, direction)


def series(records: Sequence[RollupRecord]) -> list[PerformancePoint]:
    by_start: dict[datetime, list[RollupRecord]] = {}
    for record in records:
        by_start.setdefault(record.start, []).append(record)
    points = []
    for start in sorted(by_start):
        group = by_start[start]
        sketch = sketches.merge_all(sketches.decode(r.latency) for r in group)
        points.append(
            PerformancePoint(
                start=start,
                requests=sum(r.requests for r in group),
                errors=sum(r.errors for r in group),
                rows=sum(r.rows for r in group),
                p50_ms=sketches.quantile(sketch, 0.50),
                p95_ms=sketches.quantile(sketch, 0.95),
                p99_ms=sketches.quantile(sketch, 0.99),
            )
        )
    return points


def summarise(
    model: str,
    window: Window,
    records: Sequence[RollupRecord],
    previous: Sequence[RollupRecord],
    resources: ResourceFigures,
    resolution: str,
    version: int | None = None,
    deployment: str | None = None,
) -> PerformanceSummary:
    """The summary of `records` (the window's buckets) against `previous` (the buckets
    of window.previous(), for the trend)."""
    total, sketch = figures(records, window)
    before, _ = figures(previous, window.previous())
    by_version: dict[int, list[RollupRecord]] = {}
    for record in records:
        by_version.setdefault(record.version, []).append(record)
    return PerformanceSummary(
        model=model,
        window=window,
        version=version,
        deployment=deployment,
        requests=total.requests,
        errors=total.errors,
        error_rate=total.error_rate,
        errors_by_kind=total.errors_by_kind,
        rows=total.rows,
        throughput_rps=total.throughput_rps,
        p50_ms=total.p50_ms,
        p95_ms=total.p95_ms,
        p99_ms=total.p99_ms,
        in_flight_peak=total.in_flight_peak,
        mean_batch_rows=total.mean_batch_rows,
        cpu_percent=resources.cpu_percent,
        rss_bytes=resources.rss_bytes,
        gpu_util=resources.gpu_util,
        gpu_memory_bytes=resources.gpu_memory_bytes,
        versions={v: figures(rs, window)[0] for v, rs in sorted(by_version.items())},
        latency_sketch=sketch,
        series=series(records),
        resolution=resolution,
        trend={
            name: trend(
                _as_float(getattr(total, name)),
                _as_float(getattr(before, name)) if previous else None,
            )
            for name in TREND_FIGURES
        },
    )


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
