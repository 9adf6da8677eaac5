"""Deployments: a model version served in an environment, and the moves between states.

    deploying ──replicas ready──> running ──update──> updating ──promoted/rolled back──> running
        │                            │  ^                 │
        └──load failed──> failed     │  └── restarted ────┘ (a replica died and came back)
                            │        └──stop──> stopped
                            └──redeploy (update) ──> deploying

A deployment serves one version, or two during a rollout or a canary (its traffic
split). Production serves approved versions only, unless an admin overrides, which
the audit log records.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from modelhub.domain.predictions import PredictionLogPolicy
from modelhub.domain.records import Record
from modelhub.errors import IllegalTransition, InvalidInput


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class DeploymentStatus(StrEnum):
    DEPLOYING = "deploying"
    RUNNING = "running"
    UPDATING = "updating"
    FAILED = "failed"
    STOPPED = "stopped"


class LoadBalancing(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_OUTSTANDING = "least_outstanding"


LIVE = frozenset({DeploymentStatus.DEPLOYING, DeploymentStatus.RUNNING, DeploymentStatus.UPDATING})

DEPLOYMENT_MOVES: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    DeploymentStatus.DEPLOYING: frozenset(
        {DeploymentStatus.RUNNING, DeploymentStatus.FAILED, DeploymentStatus.STOPPED}
    ),
    DeploymentStatus.RUNNING: frozenset(
        {
            DeploymentStatus.UPDATING,
            DeploymentStatus.DEPLOYING,
            DeploymentStatus.FAILED,
            DeploymentStatus.STOPPED,
        }
    ),
    DeploymentStatus.UPDATING: frozenset(
        {DeploymentStatus.RUNNING, DeploymentStatus.FAILED, DeploymentStatus.STOPPED}
    ),
    DeploymentStatus.FAILED: frozenset({DeploymentStatus.DEPLOYING, DeploymentStatus.STOPPED}),
    DeploymentStatus.STOPPED: frozenset(),
}


def check_deployment_move(name: str, current: DeploymentStatus, target: DeploymentStatus) -> None:
    if target not in DEPLOYMENT_MOVES[current]:
        raise IllegalTransition(
            f"deployment {name} is {current.value}; it cannot become {target.value}",
            {"deployment": name, "from": current.value, "to": target.value},
        )


class TrafficShare(Record):
    """One served version and the percent of requests it gets (all shares sum to 100)."""

    version: int
    percent: int = Field(ge=0, le=100)


class Autoscale(Record):
    """Replica bounds and the in-flight requests per replica the scaler aims for."""

    min_replicas: int = Field(ge=1)
    max_replicas: int = Field(ge=1)
    target_in_flight: float = Field(default=4.0, gt=0)


class AnalysisMode(StrEnum):
    """Who decides a canary: a person (promote/rollback), or the measured results."""

    MANUAL = "manual"
    AUTO = "auto"


class CanaryAnalysis(Record):
    """How an automated canary is judged (`--analysis auto`), fixed when it starts.

    After `min_requests` canary requests, the canary is compared with the stable
    version at significance `alpha`, changes under `min_effect` (relative) not counting;
    not there within `max_seconds` of `started_at`, the analysis is inconclusive."""

    mode: AnalysisMode = AnalysisMode.AUTO
    min_requests: int = Field(ge=1)
    max_seconds: float = Field(gt=0)
    alpha: float = Field(gt=0, lt=1)
    min_effect: float = Field(ge=0)
    started_at: datetime


class Rollout(Record):
    """A version change in progress: what it goes from and to, and the canary share.

    Kept on the deployment so that a server restart (or a change recorded while no
    server ran) finishes the change instead of forgetting it."""

    from_version: int
    to_version: int
    canary: int | None = None
    analysis: CanaryAnalysis | None = None


class ReplicaHealth(Record):
    pid: int | None = None
    port: int | None = None
    live: bool = False
    ready: bool = False
    restarts: int = 0
    error: str | None = None
    limits: str | None = None  # what holds it to the deployment's resources, and how


class Deployment(Record):
    name: str
    model: str
    environment: Environment
    traffic: list[TrafficShare]
    previous_version: int | None = None
    rollout: Rollout | None = None
    replicas: int = Field(ge=0)
    autoscale: Autoscale | None = None
    load_balancing: LoadBalancing = LoadBalancing.ROUND_ROBIN
    resources: dict[str, Any] = Field(default_factory=dict)
    status: DeploymentStatus
    error: str | None = None
    endpoint: str | None = None
    health: list[ReplicaHealth] = Field(default_factory=list)
    approval_override: bool = False
    prediction_log: PredictionLogPolicy | None = None  # None: nothing logged
    host: str | None = None  # the server whose supervisor serves it; None: not placed yet
    # The shared model pool it is placed on (`deploy --pool`); None: its own replicas.
    pool: str | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def versions(self) -> list[int]:
        return [share.version for share in self.traffic]

    @property
    def primary_version(self) -> int:
        """The version taking the largest share (the older one on a tie)."""
        return max(self.traffic, key=lambda share: (share.percent, -share.version)).version


def check_traffic(traffic: list[TrafficShare]) -> list[TrafficShare]:
    if not traffic:
        raise InvalidInput("a deployment serves at least one version", {"field": "traffic"})
    versions = [share.version for share in traffic]
    if len(set(versions)) != len(versions):
        raise InvalidInput("a version appears twice in the traffic split", {"field": "traffic"})
    if sum(share.percent for share in traffic) != 100:
        raise InvalidInput("traffic shares must sum to 100 percent", {"field": "traffic"})
    return traffic


class UsageRecord(Record):
    """What one version of one deployment served: cumulative since the deployment began.

    `latency_buckets` counts requests per upper bound in `LATENCY_BOUNDS_MS` (the last
    count is everything slower). Monitoring reads these.
    """

    deployment: str
    version: int
    requests: int = 0
    errors: int = 0
    rows: int = 0
    latency_ms_sum: float = 0.0
    latency_buckets: list[int] = Field(default_factory=list)
    active_callers: int = 0
    last_used: datetime | None = None


LATENCY_BOUNDS_MS: tuple[float, ...] = (
    0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip
