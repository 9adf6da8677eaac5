"""A performance summary from stored roll-ups: figures, per-version figures, a series
and the trend of each figure against the previous window.

The roll-ups come as columns. Each (bucket, version) pair is one cell: counts are
summed per cell with numpy and latency sketches per cell with sketches.BinSum, so a
week of hours for a hundred deployments (16,800 sketches) is summed once, and the
totals, versions and series are sums of cells.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from modelhub.domain.monitoring import (
    Figures,
    PerformancePoint,
    PerformanceSummary,
    ResourceFigures,
    RollupColumns,
    Trend,
    Window,
)
from modelhub.monitoring import sketches

FLAT_WITHIN = 0.05  # a relative change smaller than this is "flat"
TREND_FIGURES = ("requests", "error_rate", "throughput_rps", "p50_ms", "p95_ms", "p99_ms")
COUNTS = ("requests", "errors", "rows", "batches", "batch_rows")


class Cells:
    """Roll-up columns summed per (bucket start, version) cell."""

    def __init__(self, columns: RollupColumns) -> None:
        self.starts: list[datetime] = sorted(set(columns.start))
        self.versions: list[int] = sorted(set(columns.version))
        start_index = {start: i for i, start in enumerate(self.starts)}
        version_index = {version: i for i, version in enumerate(self.versions)}
        width = len(self.versions)
        self.size = len(self.starts) * width
        cell_of = [
            start_index[start] * width + version_index[version]
            for start, version in zip(columns.start, columns.version, strict=True)
        ]
        cells = np.asarray(cell_of, dtype=np.int64)
        self.counts = {
            name: np.bincount(cells, weights=getattr(columns, name), minlength=self.size)
            if cell_of
            else np.zeros(0)
            for name in COUNTS
        }
        self.peak = np.zeros(self.size, dtype=np.int64)
        if cell_of:
            np.maximum.at(self.peak, cells, np.asarray(columns.in_flight_peak, dtype=np.int64))
        self.kinds: list[dict[str, int]] = [{} for _ in range(self.size)]
        for cell, kinds in zip(cell_of, columns.errors_by_kind, strict=True):
            for kind, count in kinds.items():
                self.kinds[cell][kind] = self.kinds[cell].get(kind, 0) + count
        self.latency = sketches.BinSum(columns.latency, cell_of, self.size)

    def of_version(self, version: int) -> list[int]:
        index = self.versions.index(version)
        return list(range(index, self.size, len(self.versions)))

    def of_start(self, position: int) -> list[int]:
        width = len(self.versions)
        return list(range(position * width, (position + 1) * width))

    def figures(self, window: Window, cells: list[int] | None = None) -> Figures:
        chosen = list(range(self.size)) if cells is None else cells
        total = {name: int(self.counts[name][chosen].sum()) if chosen else 0 for name in COUNTS}
        kinds: dict[str, int] = {}
        for cell in chosen:
            for kind, count in self.kinds[cell].items():
                kinds[kind] = kinds.get(kind, 0) + count
        bins = self.latency.bins(chosen)
        requests, batches = total["requests"], total["batches"]
        return Figures(
            requests=requests,
            errors=total["errors"],
            error_rate=total["errors"] / requests if requests else 0.0,
            errors_by_kind=dict(sorted(kinds.items())),
            rows=total["rows"],
            throughput_rps=requests / window.seconds,
            p50_ms=sketches.bins_quantile(bins, 0.50),
            p95_ms=sketches.bins_quantile(bins, 0.95),
            p99_ms=sketches.bins_quantile(bins, 0.99),
            in_flight_peak=int(self.peak[chosen].max()) if chosen else 0,
            mean_batch_rows=total["batch_rows"] / batches if batches else None,
        )

    def series(self) -> list[PerformancePoint]:
        points = []
        for position, start in enumerate(self.starts):
            cells = self.of_start(position)
            bins = self.latency.bins(cells)
            points.append(
                PerformancePoint(
                    start=start,
                    requests=int(self.counts["requests"][cells].sum()),
                    errors=int(self.counts["errors"][cells].sum()),
                    rows=int(self.counts["rows"][cells].sum()),
                    p50_ms=sketches.bins_quantile(bins, 0.50),
                    p95_ms=sketches.bins_quantile(bins, 0.95),
                    p99_ms=sketches.bins_quantile(bins, 0.99),
                )
            )
        return points


def trend(current: float | None, previous: float | None) -> Trend:
    if current is None or previous is None:
        return Trend(current, previous, None, "unknown")
    if previous == 0:
        return Trend(current, previous, None, "flat" if current == 0 else "up")
    change = (current - previous) / previous
    direction = "flat" if abs(change) < FLAT_WITHIN else ("up" if change > 0 else "down")
    return Trend(current, previous, change, direction)


def summarise(
    model: str,
    window: Window,
    current: RollupColumns,
    previous: RollupColumns,
    resources: ResourceFigures,
    resolution: str,
    version: int | None = None,
    deployment: str | None = None,
) -> PerformanceSummary:
    """The summary of `current` (the window's buckets) against `previous` (the buckets
    of window.previous(), for the trend; an empty previous window trends "unknown")."""
    cells = Cells(current)
    total = cells.figures(window)
    before = Cells(previous).figures(window.previous()) if len(previous) else None
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
        versions={v: cells.figures(window, cells.of_version(v)) for v in cells.versions},
        latency_sketch=sketches.sketch_of(cells.latency.bins()),
        series=cells.series(),
        resolution=resolution,
        trend={
            name: trend(
                _as_float(getattr(total, name)),
                _as_float(getattr(before, name)) if before is not None else None,
            )
            for name in TREND_FIGURES
        },
    )


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
