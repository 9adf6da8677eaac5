"""Performance summaries as JSON and back: what the API sends and both clients return.

The JSON carries every figure of PerformanceSummary.to_json() and the merged latency
sketch as base64 (`latency_sketch`), so a client gets the same record a service does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelhub.domain.monitoring import (
    FIGURE_FIELDS,
    Figures,
    PerformancePoint,
    PerformanceSummary,
    Trend,
    Window,
)
from modelhub.errors import InvalidInput
from modelhub.monitoring import sketches


def summary_to_json(summary: PerformanceSummary) -> dict[str, Any]:
    return summary.to_json() | {"latency_sketch": sketches.encode_text(summary.latency_sketch)}


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _figures(data: dict[str, Any]) -> Figures:
    return Figures(
        requests=int(data["requests"]),
        errors=int(data["errors"]),
        error_rate=float(data["error_rate"]),
        errors_by_kind={str(k): int(v) for k, v in data["errors_by_kind"].items()},
        rows=int(data["rows"]),
        throughput_rps=float(data["throughput_rps"]),
        p50_ms=_optional(data["p50_ms"]),
        p95_ms=_optional(data["p95_ms"]),
        p99_ms=_optional(data["p99_ms"]),
        in_flight_peak=int(data["in_flight_peak"]),
        mean_batch_rows=_optional(data["mean_batch_rows"]),
    )


def summary_from_json(data: dict[str, Any]) -> PerformanceSummary:
    """The record `summary_to_json` wrote; InvalidInput when a field is missing or wrong."""
    try:
        figures = _figures(data)
        return PerformanceSummary(
            model=str(data["model"]),
            window=Window(
                datetime.fromisoformat(data["window"]["start"]),
                datetime.fromisoformat(data["window"]["end"]),
            ),
            version=None if data["version"] is None else int(data["version"]),
            deployment=data["deployment"],
            **{name: getattr(figures, name) for name in FIGURE_FIELDS},
            cpu_percent=_optional(data["cpu_percent"]),
            rss_bytes=None if data["rss_bytes"] is None else int(data["rss_bytes"]),
            gpu_util=_optional(data["gpu_util"]),
            gpu_memory_bytes=(
                None if data["gpu_memory_bytes"] is None else int(data["gpu_memory_bytes"])
            ),
            versions={int(v): _figures(f) for v, f in data["versions"].items()},
            latency_sketch=sketches.decode_text(data["latency_sketch"]),
            series=[
                PerformancePoint(
                    start=datetime.fromisoformat(p["start"]),
                    requests=int(p["requests"]),
                    errors=int(p["errors"]),
                    rows=int(p["rows"]),
                    p50_ms=_optional(p["p50_ms"]),
                    p95_ms=_optional(p["p95_ms"]),
                    p99_ms=_optional(p["p99_ms"]),
                )
                for p in data["series"]
            ],
            resolution=str(data["resolution"]),
            trend={
                name: Trend(
                    _optional(t["current"]),
                    _optional(t["previous"]),
                    _optional(t["change"]),
                    str(t["direction"]),
                )
                for name, t in data["trend"].items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"a performance summary is malformed: {exc}") from exc
