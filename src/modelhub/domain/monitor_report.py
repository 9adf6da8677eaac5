"""The monitoring report of one model: what `modelhub monitor` shows and the API returns.

Every section is optional: a model with no traffic, no drift reference or no
feedback still gets a report, and `notes` says, per missing section, why it is empty
and what would fill it. Figures are in base units named by their field (`_ms`,
`_bytes`, `_rps`); rates are fractions (0.05 is 5 %).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from modelhub.domain.records import Record

Direction = Literal["up", "down", "flat", "new", "gone"]
RecommendationKind = Literal["scale_out", "roll_back", "retrain", "quantize", "set_reference"]


class HealthPart(Record):
    """One thing that lowered the health score: what, by how many points, the figure."""

    part: str = Field(description="latency, error_rate, degradation, drift, accuracy, ...")
    points: float = Field(ge=0, description="How many points this took off the score.")
    figure: str = Field(description="The measured figure that cost the points.")
    detail: str = Field(description="What the figure means, in a sentence.")


class Health(Record):
    score: int = Field(ge=0, le=100, description="100 less the points of every part.")
    parts: list[HealthPart] = Field(default_factory=list)


class MinutePoint(Record):
    """One point of the charts: a minute (or an hour over long windows)."""

    at: datetime
    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class VersionFigures(Record):
    """One version's share of a window's traffic."""

    version: int
    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None


class Performance(Record):
    """Serving figures of a window, summed over the model's deployments."""

    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    rows: int = 0
    throughput_rps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    in_flight_peak: int = 0
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    gpu_util: float | None = None
    gpu_memory_bytes: int | None = None
    versions: list[VersionFigures] = Field(default_factory=list)
    series: list[MinutePoint] = Field(default_factory=list)

    def version(self, number: int) -> VersionFigures | None:
        return next((v for v in self.versions if v.version == number), None)


class Trend(Record):
    """A figure against the previous window of equal length."""

    metric: str
    current: float | None
    previous: float | None
    change: float | None = Field(description="(current - previous) / previous; None if unknown.")
    direction: Direction
    better: bool | None = Field(description="Whether the move is for the better; None if flat.")


class DegradationVerdict(Record):
    """One degradation test of the window against the previous one."""

    metric: str = Field(description="latency, error_rate or accuracy")
    test: str = Field(description="The test, e.g. Mann-Whitney U or two-proportion z")
    statistic: float
    p_value: float
    baseline: float | None = None
    current: float | None = None
    degraded: bool


class FeatureDrift(Record):
    feature: str
    test: str
    statistic: float
    p_value: float | None = None
    distance: float | None = None
    threshold: float
    drifted: bool


class Drift(Record):
    version: int
    drifted: bool = Field(description="The overall verdict, corrected for many features.")
    features: list[FeatureDrift] = Field(default_factory=list)
    drifted_features: list[str] = Field(default_factory=list)


class AccuracyPoint(Record):
    at: datetime
    value: float
    labelled: int = 0


class Accuracy(Record):
    """The task's metric from feedback, and how many predictions had feedback."""

    metric: str
    value: float | None
    previous: float | None = None
    labelled: int = 0
    predictions: int = 0
    versions: dict[int, float] = Field(default_factory=dict)
    series: list[AccuracyPoint] = Field(default_factory=list)


class Cost(Record):
    total: float
    currency: str = "USD"
    previous_total: float | None = None
    per_1000_requests: float | None = None


class FiredAlert(Record):
    id: int
    subject: str
    rule: str
    severity: str
    message: str
    state: str
    fired_at: datetime
    resolved_at: datetime | None = None


class DeploymentState(Record):
    """A live deployment of the model as the report saw it."""

    name: str
    environment: str
    versions: list[int] = Field(default_factory=list)
    previous_version: int | None = None
    replicas: int = 0
    healthy_replicas: int = 0
    status: str


class Recommendation(Record):
    """What was seen, what to do about it, and a command that does it where one exists."""

    kind: RecommendationKind
    seen: str
    action: str
    command: str | None = None
    figures: dict[str, float | int | str] = Field(default_factory=dict)


class MonitorReport(Record):
    model: str
    version: int | None = Field(description="The version asked for; None means all of them.")
    since: str = Field(description="The window's length as asked, e.g. 24h.")
    start: datetime
    end: datetime
    generated_at: datetime
    health: Health
    performance: Performance | None = None
    trends: list[Trend] = Field(default_factory=list)
    degradation: list[DegradationVerdict] = Field(default_factory=list)
    drift: Drift | None = None
    accuracy: Accuracy | None = None
    cost: Cost | None = None
    alerts: list[FiredAlert] = Field(default_factory=list)
    deployments: list[DeploymentState] = Field(default_factory=list)
    recommendations: list[Recommendation] = Field(default_factory=list)
    notes: dict[str, str] = Field(
        default_factory=dict, description="Section -> why it is empty and what would fill it."
    )


class Traffic(Record):
    """What one deployment served in a window, summed over its versions."""

    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


class DeploymentHeadline(Record):
    """A live deployment and its headline figures over a recent window."""

    model: str
    deployment: DeploymentState
    traffic: Traffic
    firing_alerts: int = Field(
        default=0, description="Alerts firing now about the deployment or its model."
    )
