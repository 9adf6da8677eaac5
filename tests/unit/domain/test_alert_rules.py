"""The training alert rules decide from a run's points alone."""

from __future__ import annotations

from datetime import UTC, datetime

from modelhub.domain.alert_rules import (
    DIVERGING_LOSS,
    LOSS_RULES,
    NAN_LOSS,
    Firing,
    RunWindow,
    Severity,
    stalled,
)
from modelhub.domain.runs import MetricPoint

AT = datetime(2026, 12, 1, tzinfo=UTC)


def fed(values: list[float]) -> list[list[Firing]]:
    """What the loss rules fire after each point, fed one at a time."""
    window = RunWindow()
    fired = []
    for step, value in enumerate(values, start=1):
        window.add(MetricPoint(name="loss", step=step, value=value, at=AT))
        fired.append([f for rule in LOSS_RULES if (f := rule.evaluate(window)) is not None])
    return fired


def test_a_non_finite_loss_fires_nan_loss_and_is_left_out_of_the_best() -> None:
    fired = fed([1.0, float("nan"), 0.9])
    assert fired[0] == [] and fired[2] == []
    assert fired[1] == [Firing("nan_loss", Severity.CRITICAL, "loss became nan at step 2")]


def test_a_loss_over_four_times_its_best_diverges_only_after_five_finite_points() -> None:
    early = fed([0.5, 9.0])  # one point is no history
    assert early == [[], []]
    fired = fed([0.5, 0.4, float("inf"), 0.45, 0.5, 0.6, 1.61])
    assert all(f == [] for f in fired[:2] + fired[3:6])
    assert [f.rule for f in fired[2]] == [NAN_LOSS.name]  # inf: nan_loss only
    assert fired[6] == [
        Firing(DIVERGING_LOSS.name, Severity.WARNING, "loss 1.61 at step 7 is over 4x its best 0.4")
    ]


def test_a_run_stalls_once_it_is_idle_for_longer_than_the_limit() -> None:
    rule = stalled(after_seconds=60)
    assert rule.evaluate(RunWindow(idle_seconds=60)) is None
    firing = rule.evaluate(RunWindow(idle_seconds=61))
    assert firing == Firing("stalled", Severity.WARNING, "made no progress for 60 s")
