"""Runs of a pipeline: their states, the moves between them, and the records around them.

    queued ──admit──> running ──exit with a result──> finishing ──registered──> completed
      ^  │               │  ├──error / memory / diverged──> failed ──resume──> queued
      │  │               │  └──crash, attempts left──> pending ──backoff over──> queued
      │  └──cancel──> cancelled <──cancel── running, pending
      └──────────── interrupted (server restart) ── running

`pending` is a run waiting out the backoff before its next attempt. `finishing` is
a run whose worker exited with a result that is being registered: it holds no slot,
and a restart finishes it (or, when its result stayed on another host, queues it
again). A completed run is final: resuming it is an IllegalTransition, never a
silent no-op.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from modelhub.domain.alerts import Alert as Alert  # re-exported: runs list their alerts
from modelhub.domain.pipelines import Priority
from modelhub.domain.records import Record
from modelhub.errors import IllegalTransition


class RunStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    FINISHING = "finishing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
ACTIVE = frozenset({RunStatus.PENDING, RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FINISHING})

RUN_MOVES: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.QUEUED, RunStatus.CANCELLED}),
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.FINISHING,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
            RunStatus.PENDING,
            RunStatus.QUEUED,
        }
    ),
    RunStatus.FINISHING: frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.QUEUED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset({RunStatus.QUEUED}),
    RunStatus.CANCELLED: frozenset({RunStatus.QUEUED}),
}

PRIORITY_RANK: dict[Priority, int] = {
    Priority.LOW: 0,
    Priority.NORMAL: 1,
    Priority.HIGH: 2,
    Priority.URGENT: 3,
}


def check_run_move(run_id: int, current: RunStatus, target: RunStatus) -> None:
    if target not in RUN_MOVES[current]:
        allowed = ", ".join(sorted(RUN_MOVES[current])) or "none: it is final"
        raise IllegalTransition(
            f"run {run_id} is {current.value}; it cannot become {target.value} "
            f"(from {current.value}: {allowed})",
            {"run": run_id, "from": current.value, "to": target.value},
        )


def effective_priority(priority: Priority, waited_seconds: float, aging_seconds: float) -> float:
    """The priority a queued run competes with: one level higher per `aging_seconds` waited.

    Aging is what keeps a low run from starving behind a stream of normal ones.
    """
    return PRIORITY_RANK[priority] + max(waited_seconds, 0.0) / aging_seconds


class Pipeline(Record):
    name: str
    version: int
    type: str
    trainer: str
    priority: Priority
    spec: dict[str, Any]
    script_digest: str | None = None
    created_by: str = Field(description="who made the pipeline: its owner")
    updated_by: str = Field(description="who wrote the current version")
    created_at: datetime
    updated_at: datetime


class RunResources(Record):
    cpus: float
    memory: int
    gpus: int


class Run(Record):
    id: int
    pipeline: str
    pipeline_version: int
    status: RunStatus
    priority: Priority
    resources: RunResources
    created_by: str
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    max_attempts: int = 3
    next_attempt_at: datetime | None = None
    progress: float = 0.0
    epoch: int | None = None
    step: int = 0
    total_steps: int | None = None
    eta_seconds: float | None = None
    last_progress_at: datetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    result_model: str
    result_version: int | None = None
    error: str | None = None
    error_code: str | None = None
    cancel_requested: bool = False
    owner: str | None = Field(
        default=None,
        description="The server start (host:pid:instance) holding the running run's lease.",
    )
    lease_expires_at: datetime | None = None
    worker_pid: int | None = None
    engine: str | None = Field(
        default=None, description="The training engine of the newest attempt (local, ray)."
    )
    requested_engine: str | None = Field(
        default=None, description="The engine the spec names; None: the scheduler chooses."
    )
    spec: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="What the run was pinned to at creation: dataset versions and digests, "
        "base version, preprocessing report, estimate; a profiling run's `profile` "
        "(see domain/pipeline_optimization.py).",
    )


class QueuedRun(Record):
    """What the scheduler needs to order and admit a queued run, read cheaply."""

    id: int
    priority: Priority
    resources: RunResources
    attempts: int
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    requested_engine: str | None = None


class MetricPoint(Record):
    name: str
    step: int
    value: float
    at: datetime


class RunEvent(Record):
    """One entry of a run's live feed: status, progress, metric, alert or checkpoint."""

    id: int
    run_id: int
    kind: str
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class Checkpoint(Record):
    run_id: int
    step: int
    digest: str
    size: int
    best: bool = False
    metric: float | None = None
    created_at: datetime
