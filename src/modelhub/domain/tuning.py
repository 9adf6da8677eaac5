"""Tuning studies: a pipeline's `search:` run as trials, each trial a run.

    running ──every trial asked and told──> completed (the best trial registered)
       │  └──no trial completed / registering failed──> failed ──resume──> running
       └──server stops: stays running; the next start picks it up

A study is named after its pipeline. Its trials are Optuna's; each one that ran
has the id of its run. A trial is `running` while its run is, `complete` with the
run's final metric, `pruned` when its intermediate metric fell behind (its run
cancelled), `fail` when the run failed or was lost.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelhub.domain.records import Record
from modelhub.domain.search import MAX_PARALLEL, MAX_TRIALS

MAX_FILES = 16


class StudyStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class TrialState(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"


class TuneRequest(BaseModel):
    """`modelhub tune pipeline.yaml --trials 30 --parallel 2 --timeout 1h`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: str = Field(min_length=1, description="pipeline.yaml's text, with a search block.")
    files: dict[str, str] = Field(
        default_factory=dict, max_length=MAX_FILES, description="The script the spec names."
    )
    trials: int = Field(ge=1, le=MAX_TRIALS)
    parallel: int = Field(default=1, ge=1, le=MAX_PARALLEL)
    timeout: str | None = Field(
        default=None, max_length=24, description="Stop asking new trials after: 90m, 1h, 2d."
    )


class Trial(Record):
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None = None
    run_id: int | None = None
    steps: int = Field(default=0, description="Intermediate metric values reported.")
    reason: str | None = None
    asked_at: datetime | None = None


class Study(Record):
    name: str = Field(description="The pipeline's name.")
    pipeline_version: int
    status: StudyStatus
    metric: str
    direction: str
    pruner: str
    trials: int = Field(description="How many trials the study asks for.")
    parallel: int
    timeout_seconds: float | None = None
    created_by: str
    started_at: datetime
    deadline: datetime | None = Field(default=None, description="No new trial after this.")
    finished_at: datetime | None = None
    reason: str | None = None
    best_trial: int | None = None
    best_value: float | None = None
    best_run: int | None = None
    best_params: dict[str, Any] = Field(default_factory=dict)
    registered_version: int | None = None
    trial_list: list[Trial] = Field(default_factory=list)
    importance: dict[str, float] = Field(
        default_factory=dict, description="Each parameter's share of the metric's variance."
    )
