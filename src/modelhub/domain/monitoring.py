"""Monitoring records: time windows, per-minute roll-ups, resource samples, summaries.

A roll-up is what one version of one deployment served in one minute (or, rolled up
again, one hour): counts, errors by kind, rows, batches, the in-flight peak and the
latency as a mergeable quantile sketch. Stores keep the sketch as opaque bytes
(`RollupRecord.latency`); the monitoring engine encodes and merges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import parse_duration
from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    from ddsketch import DDSketch

MINUTE = timedelta(minutes=1)
ALL_DEPLOYMENTS = ""  # the deployment of roll-ups that merge all of a model's deployments
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive

    @classmethod
    def last(cls, length: timedelta, now: datetime) -> Window:
        return cls(now - length, now)

    def previous(self) -> Window:
        return Window(self.start - (self.end - self.start), self.start)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def window_since(since: str, now: datetime | None = None) -> Window:
    """The window of length `since` ("24h", "7d") that ends `now` (default: now);
    InvalidInput naming `since` when it does not parse. Every monitoring read that
    takes `--since` turns it into a window here."""
    return Window.last(parse_duration(since, field="since"), now or datetime.now(UTC))


def check_window(window: Window) -> None:
    """InvalidInput unless the window is aware and ends after it starts."""
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise InvalidInput("a window's start and end must carry a time zone")
    if window.end <= window.start:
        raise InvalidInput(
            "a window must end after it starts",
            {"start": window.start.isoformat(), "end": window.end.isoformat()},
        )


def minute_of(at: datetime) -> datetime:
    """The start of the minute `at` falls in, aware UTC."""
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class RollupRecord:
    """One deployment version over one bucket (a minute or an hour), as stored.

    `latency` is the encoded latency sketch (milliseconds); empty when no request
    finished. `errors_by_kind` maps an error code (invalid_input, internal, ...) to
    its count; `errors` is their sum. `deployment` "" (ALL_DEPLOYMENTS) is the merge of
    all the model's deployments.
    """

    deployment: str
    model: str
    version: int
    start: datetime
    requests: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    batches: int = 0
    batch_rows: int = 0
    in_flight_peak: int = 0
    latency: bytes = b""

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    @property
    def key(self) -> tuple[str, str, int, datetime]:
        return (self.model, self.deployment, self.version, self.start)


@dataclass(frozen=True)
class RollupColumns:
    """Many roll-ups as columns (row i across every list), for reads of thousands of
    buckets: a week of hours for a hundred deployments is one of these, not 16,800
    records."""

    deployment: list[str] = field(default_factory=list)
    version: list[int] = field(default_factory=list)
    start: list[datetime] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    errors_by_kind: list[dict[str, int]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    batch_rows: list[int] = field(default_factory=list)
    in_flight_peak: list[int] = field(default_factory=list)
    latency: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def of(cls, records: list[RollupRecord]) -> RollupColumns:
        columns = cls()
        for r in records:
            columns.deployment.append(r.deployment)
            columns.version.append(r.version)
            columns.start.append(r.start)
            columns.requests.append(r.requests)
            columns.errors.append(r.errors)
            columns.errors_by_kind.append(dict(r.errors_by_kind))
            columns.rows.append(r.rows)
            columns.batches.append(r.batches)
            columns.batch_rows.append(r.batch_rows)
            columns.in_flight_peak.append(r.in_flight_peak)
            columns.latency.append(r.latency)
        return columns

    def extend(self, other: RollupColumns) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


@dataclass(frozen=True)
class ResourceSample:
    """One process's use at one moment: a replica (`subject` = deployment name) or a
    training worker (`subject` = run id as text). GPU figures are None without a GPU."""

    kind: str  # "replica" | "training"
    subject: str
    pid: int
    at: datetime
    cpu_percent: float
    cpu_seconds: float
    rss_bytes: int
    gpu_util: float | None = None
    gpu_memory_bytes: int | None = None
    interval_seconds: float = 0.0


RESOURCE_KINDS = frozenset({"replica", "training"})


@dataclass(frozen=True)
class ResourceTotals:
    """What a run's workers used: CPU-seconds (cumulative, summed over workers),
    GPU-seconds (utilisation x time) and the highest resident memory seen."""

    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    peak_rss_bytes: int = 0


@dataclass(frozen=True)
class Trend:
    """A figure of this window against the window before: relative change
    (None when the previous was 0 or absent) and its direction."""

    current: float | None
    previous: float | None
    change: float | None
    direction: str  # "up" | "down" | "flat" | "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "previous": self.previous,
            "change": self.change,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class PerformancePoint:
    """One bucket of a summary's series (a minute for windows up to 24 h, else an hour)."""

    start: datetime
    requests: int
    errors: int
    rows: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "requests": self.requests,
            "errors": self.errors,
            "rows": self.rows,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


@dataclass(frozen=True)
class Figures:
    """The traffic figures of one window, for the whole model or one version."""

    requests: int
    errors: int
    error_rate: float
    errors_by_kind: dict[str, int]
    rows: int
    throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    in_flight_peak: int
    mean_batch_rows: float | None

    def to_json(self) -> dict[str, Any]:
        return figures_json(self)


FIGURE_FIELDS = tuple(f.name for f in fields(Figures))


def figures_json(figures: Figures | PerformanceSummary) -> dict[str, Any]:
    """The traffic figures (the fields of `Figures`) of a version's figures or a summary."""
    found = {name: getattr(figures, name) for name in FIGURE_FIELDS}
    return found | {"errors_by_kind": dict(figures.errors_by_kind)}


@dataclass(frozen=True)
class PerformanceSummary:
    """How a model (or one version or deployment of it) served over a window."""

    model: str
    window: Window
    version: int | None
    deployment: str | None
    requests: int
    errors: int
    error_rate: float
    errors_by_kind: dict[str, int]
    rows: int
    throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    in_flight_peak: int
    mean_batch_rows: float | None
    cpu_percent: float | None
    rss_bytes: int | None
    gpu_util: float | None
    gpu_memory_bytes: int | None
    versions: dict[int, Figures]
    latency_sketch: DDSketch
    series: list[PerformancePoint]
    resolution: str  # "minute" | "hour"
    trend: dict[str, Trend]

    @property
    def minutes(self) -> list[PerformancePoint]:
        """The series (per minute up to 24 h; per hour beyond: see `resolution`)."""
        return self.series

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "version": self.version,
            "deployment": self.deployment,
            **figures_json(self),
            "cpu_percent": self.cpu_percent,
            "rss_bytes": self.rss_bytes,
            "gpu_util": self.gpu_util,
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "versions": {str(v): f.to_json() for v, f in sorted(self.versions.items())},
            "resolution": self.resolution,
            "series": [point.to_json() for point in self.series],
            "trend": {name: t.to_json() for name, t in self.trend.items()},
        }


@dataclass(frozen=True)
class ResourceFigures:
    """Mean CPU percent, mean resident memory and GPU figures over a window."""

    cpu_percent: float | None = None
    rss_bytes: int | None = None
    gpu_util: float | None = None
    gpu_memory_bytes: int | None = None
