"""Degradation verdicts and trends: a window compared with a baseline, by tests.

A verdict says which test ran, on what, and why it decided what it did: the p-value
against `alpha`, and the relative effect against `min_effect`. A change is `worse` only
when it is both significant and large enough, and points the bad way: a statistically
significant 1 % slowdown over a million requests is not a regression.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from modelhub.domain.records import Record


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    FLAT = "flat"


class Metric(StrEnum):
    LATENCY = "latency"
    ERROR_RATE = "error_rate"
    ACCURACY = "accuracy"


class DegradationPolicy(Record):
    """How sure (`alpha`) and how large (`min_effect`, relative) a change must be."""

    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_effect: float = Field(default=0.10, ge=0)
    # Accuracy moves in points, not in percent of itself: 0.90 -> 0.80 is 10 points.
    min_accuracy_drop: float = Field(default=0.02, ge=0, le=1)
    # Fewer observations than this on either side: the test does not run.
    min_samples: int = Field(default=20, ge=1)
    # Latency samples drawn from each sketch (quantile grid), so that the test's cost
    # and its power to call tiny differences significant stay bounded.
    max_samples: int = Field(default=5000, ge=10)


class Verdict(Record):
    """One test of one metric: baseline against current."""

    metric: Metric
    test: str  # "mann-whitney-u", "chi2-contingency", "fisher-exact" or "none"
    baseline: float | None  # p50 latency (ms), error rate or accuracy
    current: float | None
    n_baseline: int
    n_current: int
    statistic: float | None = None
    p_value: float | None = None
    # Latency and error rate: relative change, (current - baseline) / baseline; None
    # when the baseline is 0 (any rise from nothing is an infinite relative change).
    # Accuracy: the change in points, current - baseline.
    effect: float | None = None
    effect_kind: Literal["relative", "absolute"] = "relative"
    direction: Direction = Direction.FLAT
    alpha: float
    min_effect: float
    significant: bool = False
    worse: bool = False
    reason: str

    @property
    def tested(self) -> bool:
        return self.test != "none"


class DegradationReport(Record):
    verdicts: list[Verdict]

    @property
    def worse(self) -> bool:
        return any(verdict.worse for verdict in self.verdicts)

    @property
    def worse_metrics(self) -> list[Metric]:
        return [verdict.metric for verdict in self.verdicts if verdict.worse]


class Trend(Record):
    """A figure against the previous window: how much it moved, which way, whether bad."""

    metric: str
    current: float | None
    previous: float | None
    change: float | None  # relative; None when either is missing or previous is 0
    direction: Direction
    worse: bool
