"""What the platform spent, what it may spend, and how well it served: the records the
cost service computes and every transport and client shows (formulas in
monitoring/pricing.py and monitoring/figures.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modelhub.domain.limits import check_text
from modelhub.domain.records import Record
from modelhub.errors import InvalidInput


class Prices(Record):
    """The price table (from settings): what one unit of each resource costs."""

    cpu_hour: float = Field(ge=0, description="one CPU core for one hour")
    gpu_hour: float = Field(ge=0, description="one GPU for one hour")
    replica_hour: float = Field(ge=0, description="one serving replica for one hour")
    storage_gb_month: float = Field(ge=0, description="10**9 stored bytes for 30 days")
    currency: str


class CostParts(Record):
    cpu: float = 0.0
    gpu: float = 0.0
    replicas: float = 0.0
    storage: float = 0.0

    @property
    def total(self) -> float:
        return self.cpu + self.gpu + self.replicas + self.storage

    def plus(self, other: CostParts) -> CostParts:
        return CostParts(
            cpu=self.cpu + other.cpu,
            gpu=self.gpu + other.gpu,
            replicas=self.replicas + other.replicas,
            storage=self.storage + other.storage,
        )


class CostSummary(Record):
    """What one subject (a run, a deployment, a model, a group of them) cost in a window.

    `estimate` is, for a run, what was estimated before it ran; `per_1000_requests`
    is set where requests were served; `dedup_saved_bytes` where storage is counted.
    """

    subject: str
    currency: str
    total: float
    parts: CostParts = Field(default_factory=CostParts)
    window_start: datetime | None = None
    window_end: datetime | None = None
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    replica_seconds: float = 0.0
    storage_bytes: int = 0
    requests: int | None = None
    per_1000_requests: float | None = None
    estimate: float | None = None
    dedup_saved_bytes: int | None = None
    notes: list[str] = Field(default_factory=list)


class RunUsage(Record):
    """What a run's attempts used, measured from their worker process trees."""

    run_id: int
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    attempts: int = 0


class AttemptUsage(Record):
    """One attempt's measured use; recording it again replaces the earlier figure."""

    run_id: int
    attempt: int = Field(ge=1)
    cpu_seconds: float = Field(ge=0)
    gpu_seconds: float = Field(ge=0)
    wall_seconds: float = Field(ge=0)
    final: bool = False


class ReplicaSpan(Record):
    """One replica process of a deployment in one readiness state, from start to end
    (open while `ended_at` is None; `last_seen_at` is when it was last reported)."""

    deployment: str
    pid: int
    ready: bool
    started_at: datetime
    ended_at: datetime | None = None
    last_seen_at: datetime


class BudgetScope(StrEnum):
    TAG = "tag"
    USER = "user"
    MODEL = "model"


class Budget(Record):
    id: int
    scope: BudgetScope
    key: str = Field(description="the tag's key for a tag budget, else empty")
    value: str = Field(description="the tag's value, the user's or the model's name")
    monthly: float = Field(gt=0)
    currency: str
    created_by: str
    created_at: datetime

    @property
    def label(self) -> str:
        if self.scope is BudgetScope.TAG:
            return f"tag:{self.key}={self.value}"
        return f"{self.scope.value}:{self.value}"


MAX_MONTHLY = 1e12


class BudgetRequest(Record):
    """What `cost budget set` asks for: one of a tag (KEY=VALUE), a user or a model, and
    the monthly amount (in the price table's currency)."""

    monthly: float
    tag: str | None = None
    user: str | None = None
    model: str | None = None

    def target(self) -> tuple[BudgetScope, str, str]:
        """(scope, key, value); InvalidInput unless exactly one target is named."""
        named = [
            (k, v) for k, v in (("tag", self.tag), ("user", self.user), ("model", self.model)) if v
        ]
        if len(named) != 1:
            raise InvalidInput(
                "a budget names exactly one of a tag KEY=VALUE, a user or a model",
                {"field": "scope"},
            )
        if not 0 < self.monthly <= MAX_MONTHLY:
            raise InvalidInput(
                f"a monthly budget is above 0 and at most {MAX_MONTHLY:g}", {"field": "monthly"}
            )
        kind, text = named[0]
        check_text(text, kind)
        if "\x00" in text or len(text) > 256:
            raise InvalidInput(f"{kind}: at most 256 characters, no NUL", {"field": kind})
        if kind != "tag":
            return BudgetScope(kind), "", text
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput(
                f"a tag budget names KEY=VALUE, not {text!r}", {"field": "tag", "value": text}
            )
        return BudgetScope.TAG, key.strip(), value.strip()


class BudgetStatus(Record):
    """A budget and this month's spend against it."""

    budget: Budget
    month: str
    spent: float
    ratio: float
    fired: list[int] = Field(default_factory=list, description="thresholds (%) alerted this month")


class CostRow(Record):
    key: str
    cost: CostSummary


class CostReport(Record):
    by: str
    currency: str
    window_start: datetime
    window_end: datetime
    total: float
    rows: list[CostRow]
    storage_bytes: int = 0
    dedup_saved_bytes: int = 0


class EngineFigures(Record):
    """The plan's training figures for one engine (executor kind), or "all"."""

    engine: str
    runs_finished: int = 0
    runs_completed: int = 0
    runs_failed: int = 0
    success_ratio: float | None = None
    queue_wait_median_seconds: float | None = None
    queue_wait_p95_seconds: float | None = None
    job_seconds_avg: float | None = None
    cpu_seconds_used: float = 0.0
    cpu_seconds_available: float = 0.0
    utilisation_ratio: float | None = None


class DeploymentUptime(Record):
    deployment: str
    engine: str = "local"
    seconds_observed: float = 0.0
    seconds_up: float = 0.0
    uptime_ratio: float | None = None


class PlatformFigures(Record):
    window_start: datetime
    window_end: datetime
    training: list[EngineFigures]
    platform: EngineFigures
    deployments: list[DeploymentUptime]
    uptime_ratio: float | None = None


GROUPINGS = ("model", "deployment", "run", "user")


def check_grouping(by: str) -> str:
    """`model`, `deployment`, `run`, `user` or `tag:KEY`; anything else is InvalidInput."""
    if by in GROUPINGS or (by.startswith("tag:") and len(by) > 4):
        return by
    raise InvalidInput(
        f"cannot group cost by {by!r}: use model, deployment, run, user or tag:KEY",
        {"field": "by", "value": by},
    )
