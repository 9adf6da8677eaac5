"""What the health score and the recommendations are computed from: one model's window.

The monitor service gathers these from the history, prediction, drift, degradation,
alert and deployment services; the engine only reads them, so every rule can be
tested with figures written by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from modelhub.domain.monitor_report import (
    Accuracy,
    DegradationVerdict,
    DeploymentState,
    Drift,
    FiredAlert,
    Performance,
)
from modelhub.domain.records import ModelVersion

# Fewer requests than this in a window say nothing about its latency or error rate.
MIN_REQUESTS = 20
# Fewer labelled predictions than this say nothing about accuracy.
MIN_LABELLED = 30
MIB = 1024 * 1024


@dataclass(frozen=True)
class Objectives:
    """What the figures are held against (settings `monitor_*`)."""

    p99_ms: float | None = None  # the latency objective; None: the previous window's p99
    latency_tolerance: float = 1.10  # p99 within 10 % of its reference is on target
    slow_p99_ms: float = 100.0  # without an objective, a p99 above this is "high" for quantize
    quantize_min_bytes: int = 100 * MIB  # an fp32 model this large is worth quantizing
    max_replicas: int = 64


@dataclass(frozen=True)
class Observations:
    model: str
    version: ModelVersion | None  # the version in focus: the one asked for, or the busiest
    performance: Performance | None = None
    previous: Performance | None = None  # the window of equal length just before
    degradation: Sequence[DegradationVerdict] = ()
    drift: Drift | None = None
    reference_missing: bool = False  # drift found no reference profile for the version
    accuracy: Accuracy | None = None
    alerts: Sequence[FiredAlert] = ()
    deployments: Sequence[DeploymentState] = ()
    objectives: Objectives = field(default_factory=Objectives)

    def latency_reference(self) -> tuple[float, str] | None:
        """The p99 the window is held against and what it is: objective or previous window."""
        if self.objectives.p99_ms is not None:
            return self.objectives.p99_ms, "objective"
        previous = self.previous
        if previous is not None and previous.p99_ms and previous.requests >= MIN_REQUESTS:
            return previous.p99_ms, "previous window"
        return None

    def p99_over_reference(self) -> tuple[float, float, str] | None:
        """(p99, reference, what) when p99 is measured and beyond its tolerance, else None."""
        performance = self.performance
        reference = self.latency_reference()
        if performance is None or performance.p99_ms is None or reference is None:
            return None
        if performance.requests < MIN_REQUESTS:
            return None
        target, what = reference
        if performance.p99_ms <= target * self.objectives.latency_tolerance:
            return None
        return performance.p99_ms, target, what
