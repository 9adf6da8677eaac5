"""Each headline figure against the previous window: its change, direction and whether
the move is for the better. A change within FLAT (5 %) of the previous value is flat."""

from __future__ import annotations

from modelhub.domain.monitor_report import Accuracy, Cost, Direction, Performance, Trend
from modelhub.monitoring.health import LOWER_IS_BETTER

FLAT = 0.05
ACCURACY_FLAT = 0.01
# metric -> True when a larger value is better, False when smaller is, None when neither.
PERFORMANCE_METRICS: dict[str, bool | None] = {
    "requests": None,
    "throughput_rps": None,
    "p50_ms": False,
    "p95_ms": False,
    "p99_ms": False,
    "error_rate": False,
    "cpu_percent": False,
    "rss_bytes": False,
}


def trend(
    metric: str,
    current: float | None,
    previous: float | None,
    larger_better: bool | None,
    flat: float = FLAT,
) -> Trend:
    direction: Direction
    change: float | None = None
    if current is None and previous is None:
        direction = "flat"
    elif previous is None:
        direction = "new"
    elif current is None:
        direction = "gone"
    elif previous == 0:
        direction = "flat" if current == 0 else "up"
    else:
        change = (current - previous) / abs(previous)
        direction = "flat" if abs(change) <= flat else ("up" if change > 0 else "down")
    better: bool | None = None
    if direction in ("up", "down") and larger_better is not None:
        better = (direction == "up") == larger_better
    return Trend(
        metric=metric,
        current=current,
        previous=previous,
        change=None if change is None else round(change, 4),
        direction=direction,
        better=better,
    )


def trends(
    current: Performance | None,
    previous: Performance | None,
    accuracy: Accuracy | None = None,
    cost: Cost | None = None,
) -> list[Trend]:
    found: list[Trend] = []
    if current is not None or previous is not None:
        for metric, larger_better in PERFORMANCE_METRICS.items():
            now = getattr(current, metric) if current is not None else None
            before = getattr(previous, metric) if previous is not None else None
            if now is not None or before is not None:  # unmeasured (no GPU ...): no arrow
                found.append(trend(metric, _number(now), _number(before), larger_better))
    if accuracy is not None and accuracy.value is not None:
        larger_better = accuracy.metric not in LOWER_IS_BETTER
        # A model metric moves in small steps: 1 % of it is already worth an arrow.
        found.append(
            trend(accuracy.metric, accuracy.value, accuracy.previous, larger_better, ACCURACY_FLAT)
        )
    if cost is not None:
        found.append(trend("cost", cost.total, cost.previous_total, False))
    return found


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
