"""Optimising a pipeline: a profile of a short run, proposed changes, and what they measured.

    profiling ──no change would help──> nothing_to_propose
        └──changes proposed──> measuring ──not faster, or validation lost──> no_improvement
                                   └──faster, validation holds──> proposed ──accept──> accepted
                                                                  └──pipeline changed──> superseded
    profiling, measuring ──a run failed or was cancelled──> failed

An optimisation is known by the id of its profiling run (the baseline). Its state is
read from that run and the candidate run it started; accepting it stores the
candidate's spec as the pipeline's next version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from modelhub.domain.pipeline_optimization_terms import (
    DEFAULT_BUDGET_STEPS,
    DEFAULT_TOLERANCE,
    MAX_BUDGET_STEPS,
    MAX_TOLERANCE,
    MIN_BUDGET_STEPS,
    WORKING,
    OptimizationStatus,
)
from modelhub.domain.records import Record

__all__ = [
    "DEFAULT_BUDGET_STEPS",
    "DEFAULT_TOLERANCE",
    "MAX_BUDGET_STEPS",
    "MAX_TOLERANCE",
    "MIN_BUDGET_STEPS",
    "WORKING",
    "OptimizationStatus",
]


class PhaseProfile(Record):
    """Where one short run's time went (seconds per phase) and how fast it trained."""

    run_id: int
    phases: dict[str, float] = Field(description="seconds per phase, `other` included")
    seconds: float
    steps: int
    samples: int
    checkpoints: int
    samples_per_s: float
    validation: float | None = Field(default=None, description="the validation metric's value")

    def share(self, *phases: str) -> float:
        """The fraction of the run's time spent in `phases`."""
        if self.seconds <= 0:
            return 0.0
        return sum(self.phases.get(p, 0.0) for p in phases) / self.seconds


class ProposedChange(Record):
    """One change of the spec: the field (`hyperparameters.batch_size`, ...), from what to what."""

    field: str
    old: Any
    new: Any
    reason: str


class ValidationCheck(Record):
    metric: str
    mode: Literal["min", "max"]
    before: float | None
    after: float | None
    tolerance: float
    holds: bool


class PipelineOptimization(Record):
    id: int = Field(description="the profiling run's id")
    pipeline: str
    pipeline_version: int = Field(description="the version that was profiled")
    status: OptimizationStatus
    message: str
    budget_steps: int
    tolerance: float
    baseline_run: int
    candidate_run: int | None = None
    changes: list[ProposedChange] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="findings with no change to make")
    before: PhaseProfile | None = None
    after: PhaseProfile | None = None
    throughput_gain: float | None = Field(
        default=None, description="samples/s after over before (1.5: 50% faster)"
    )
    validation: ValidationCheck | None = None
    candidate_spec: dict[str, Any] | None = None
    accepted_version: int | None = None
    created_by: str
    created_at: datetime
