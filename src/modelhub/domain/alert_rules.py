"""Alert rules: a name, a severity and a check over what a subject did lately.

A rule only decides; whoever evaluates it fires the alert in the store and writes
the event. Training has three rules over a run's loss points and progress; the
monitoring issue adds rules over serving and cost with the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from modelhub.domain.alerts import Severity as Severity  # one scale for every rule
from modelhub.domain.runs import MetricPoint

LOSS_METRICS = ("loss", "train_loss")
DIVERGENCE_FACTOR = 4.0  # a loss this many times its best so far is diverging
DIVERGENCE_MIN_POINTS = 5


@dataclass(frozen=True)
class Firing:
    """What a rule says when its check fails: the alert to fire."""

    rule: str
    severity: Severity
    message: str


@dataclass
class RunWindow:
    """What the training rules see of one run: its newest loss point, what they need
    to remember of the earlier ones, and how long ago it last made progress."""

    latest: MetricPoint | None = None
    best_loss: float = math.inf  # of the finite loss points so far, `latest` included
    finite_points: int = 0
    idle_seconds: float = 0.0

    def add(self, point: MetricPoint) -> None:
        self.latest = point
        if math.isfinite(point.value):
            self.finite_points += 1
            self.best_loss = min(self.best_loss, point.value)


@dataclass(frozen=True)
class AlertRule:
    name: str
    severity: Severity
    check: Callable[[RunWindow], str | None]  # the message when the rule fires

    def evaluate(self, window: RunWindow) -> Firing | None:
        message = self.check(window)
        return None if message is None else Firing(self.name, self.severity, message)


def _nan_loss(window: RunWindow) -> str | None:
    point = window.latest
    if point is None or math.isfinite(point.value):
        return None
    return f"{point.name} became {point.value} at step {point.step}"


def _diverging_loss(window: RunWindow) -> str | None:
    point, best = window.latest, window.best_loss
    if point is None or not math.isfinite(point.value):
        return None
    if window.finite_points < DIVERGENCE_MIN_POINTS or best <= 0:
        return None
    if point.value <= DIVERGENCE_FACTOR * best:
        return None
    return (
        f"{point.name} {point.value:.4g} at step {point.step} is over "
        f"{DIVERGENCE_FACTOR:g}x its best {best:.4g}"
    )


NAN_LOSS = AlertRule("nan_loss", Severity.CRITICAL, _nan_loss)
DIVERGING_LOSS = AlertRule("diverging_loss", Severity.WARNING, _diverging_loss)
LOSS_RULES = (NAN_LOSS, DIVERGING_LOSS)  # evaluated at each new loss point


def stalled(after_seconds: float) -> AlertRule:
    """A run that made no progress for `after_seconds` (evaluated at each look)."""

    def check(window: RunWindow) -> str | None:
        if window.idle_seconds <= after_seconds:
            return None
        return f"made no progress for {after_seconds:.0f} s"

    return AlertRule("stalled", Severity.WARNING, check)
