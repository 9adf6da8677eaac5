"""Trends: change against the previous window, its direction and whether it is better."""

from __future__ import annotations

from modelhub.domain.monitor_report import Accuracy, Cost
from modelhub.monitoring.trend_arrows import trend, trends
from tests.unit.monitoring.figures import performance


def test_direction_and_better_follow_the_metric() -> None:
    slower = trend("p99_ms", 15.0, 10.0, larger_better=False)
    assert (slower.direction, slower.better, slower.change) == ("up", False, 0.5)
    busier = trend("requests", 200.0, 100.0, larger_better=None)
    assert (busier.direction, busier.better) == ("up", None)
    steady = trend("p50_ms", 10.2, 10.0, larger_better=False)
    assert (steady.direction, steady.better) == ("flat", None)
    assert trend("p99_ms", 5.0, None, False).direction == "new"
    assert trend("p99_ms", None, 5.0, False).direction == "gone"
    assert trend("error_rate", 0.01, 0.0, False).direction == "up"


def test_trends_cover_performance_accuracy_and_cost() -> None:
    accuracy = Accuracy(metric="accuracy", value=0.8, previous=0.9, labelled=500, predictions=600)
    found = trends(
        performance(p99_ms=24.0), performance(), accuracy, Cost(total=12.0, previous_total=10.0)
    )
    by_metric = {t.metric: t for t in found}
    assert by_metric["p99_ms"].direction == "up" and by_metric["p99_ms"].better is False
    assert by_metric["accuracy"].direction == "down" and by_metric["accuracy"].better is False
    assert by_metric["cost"].change == 0.2
    assert by_metric["requests"].direction == "flat"
    assert trends(None, None) == []
