"""The health score: 100 for a healthy model, and each part's points for fixed figures."""

from __future__ import annotations

import pytest

from modelhub.domain.monitor_report import (
    Accuracy,
    DegradationVerdict,
    Drift,
    FeatureDrift,
    FiredAlert,
    Health,
)
from modelhub.monitoring.health import health
from modelhub.monitoring.observations import Objectives
from tests.unit.monitoring.figures import AT, deployment, healthy, performance, version


def _points(observed_health: Health, part: str) -> float:
    parts = {p.part: p.points for p in observed_health.parts}
    return parts.get(part, 0.0)


def test_a_healthy_model_scores_100_with_no_parts() -> None:
    result = health(healthy())
    assert result.score == 100
    assert result.parts == []


def test_latency_over_its_objective_costs_points_in_proportion() -> None:
    observed = healthy(objectives=Objectives(p99_ms=50.0), performance=performance(p99_ms=84.0))
    result = health(observed)
    [part] = result.parts
    assert part.part == "latency"
    assert part.points == pytest.approx(20 * (84 / 50 - 1), abs=0.05)
    assert "84.0 ms" in part.figure and "objective 50.0 ms" in part.figure
    assert result.score == round(100 - part.points)


def test_latency_within_ten_percent_of_its_objective_costs_nothing() -> None:
    observed = healthy(objectives=Objectives(p99_ms=50.0), performance=performance(p99_ms=54.0))
    assert health(observed).score == 100


def test_without_an_objective_latency_is_held_against_the_previous_window() -> None:
    observed = healthy(performance=performance(p99_ms=36.0), previous=performance(p99_ms=12.0))
    result = health(observed)
    assert _points(result, "latency") == 20.0  # 3x: capped
    assert "previous window 12.0 ms" in result.parts[0].figure


def test_a_window_with_too_few_requests_says_nothing_about_latency_or_errors() -> None:
    few = performance(requests=5, errors=4, error_rate=0.8, p99_ms=900.0)
    assert health(healthy(performance=few, objectives=Objectives(p99_ms=50.0))).score == 100


def test_error_rate_costs_three_points_per_percent() -> None:
    result = health(healthy(performance=performance(errors=500, error_rate=0.05)))
    assert _points(result, "error_rate") == 15.0
    assert "5.00% of 10000 requests failed" in result.parts[0].figure


def test_each_significant_degradation_test_costs_ten_points() -> None:
    verdicts = [
        DegradationVerdict(
            metric="latency", test="Mann-Whitney U", statistic=1.0, p_value=1e-6, degraded=True
        ),
        DegradationVerdict(
            metric="error_rate", test="two-proportion z", statistic=0.1, p_value=0.4, degraded=False
        ),
    ]
    result = health(healthy(degradation=verdicts))
    assert _points(result, "degradation") == 10.0
    assert "Mann-Whitney U" in result.parts[0].figure
    assert "error_rate" not in result.parts[0].figure


def _drift(drifted: list[str], total: int = 20) -> Drift:
    features = [
        FeatureDrift(
            feature=f"f{i}",
            test="Kolmogorov-Smirnov",
            statistic=0.3 if f"f{i}" in drifted else 0.01,
            p_value=1e-9 if f"f{i}" in drifted else 0.6,
            threshold=0.05,
            drifted=f"f{i}" in drifted,
        )
        for i in range(total)
    ]
    return Drift(version=3, drifted=bool(drifted), features=features, drifted_features=drifted)


def test_drift_costs_five_points_plus_the_share_of_features_drifted() -> None:
    result = health(healthy(drift=_drift(["f3", "f7"])))
    assert _points(result, "drift") == pytest.approx(5 + 15 * 2 / 20)
    assert "2 of 20 features drifted: f3, f7" in result.parts[0].figure


def test_no_drift_costs_nothing() -> None:
    assert health(healthy(drift=_drift([]))).score == 100


def test_an_accuracy_drop_from_0_9_to_0_8_costs_twenty_points() -> None:
    accuracy = Accuracy(metric="accuracy", value=0.8, previous=0.9, labelled=500, predictions=5000)
    result = health(healthy(accuracy=accuracy))
    assert _points(result, "accuracy") == pytest.approx(20.0)
    assert "0.800 against previous window 0.900 (500 labelled" in result.parts[0].figure


def test_without_a_previous_window_accuracy_is_held_against_the_versions_metric() -> None:
    accuracy = Accuracy(metric="accuracy", value=0.86, labelled=200, predictions=900)
    result = health(healthy(accuracy=accuracy, version=version(metrics={"accuracy": 0.91})))
    assert _points(result, "accuracy") == pytest.approx(10.0)
    assert "version 3's evaluation 0.910" in result.parts[0].figure


def test_too_few_labels_say_nothing_about_accuracy() -> None:
    accuracy = Accuracy(metric="accuracy", value=0.5, previous=0.9, labelled=10, predictions=10)
    assert health(healthy(accuracy=accuracy)).score == 100


def test_a_lower_is_better_metric_costs_points_when_it_rises() -> None:
    accuracy = Accuracy(metric="rmse", value=1.2, previous=1.0, labelled=100, predictions=100)
    result = health(healthy(accuracy=accuracy))
    assert _points(result, "accuracy") == pytest.approx(25.0)  # 20 % worse: 40, capped
    better = Accuracy(metric="rmse", value=0.8, previous=1.0, labelled=100, predictions=100)
    assert health(healthy(accuracy=better)).score == 100


def _alert(rule: str, severity: str, state: str = "firing") -> FiredAlert:
    return FiredAlert(
        id=1,
        subject="model:intents",
        rule=rule,
        severity=severity,
        message="m",
        state=state,
        fired_at=AT,
    )


def test_firing_alerts_cost_points_by_severity_and_resolved_ones_nothing() -> None:
    alerts = [
        _alert("p99", "warning"),
        _alert("errors", "critical"),
        _alert("old", "critical", "resolved"),
    ]
    result = health(healthy(alerts=alerts))
    assert _points(result, "alerts") == 20.0
    assert "old" not in result.parts[0].figure


def test_replicas_not_ready_cost_points_in_proportion() -> None:
    result = health(healthy(deployments=[deployment(replicas=2, healthy_replicas=1)]))
    assert _points(result, "replicas") == 15.0
    assert result.parts[0].figure == "1 of 2 replicas not ready"


def test_parts_add_up_never_below_zero_and_come_largest_first() -> None:
    observed = healthy(
        objectives=Objectives(p99_ms=10.0),
        performance=performance(p99_ms=100.0, errors=2000, error_rate=0.2),
        deployments=[deployment(replicas=2, healthy_replicas=0)],
        drift=_drift(["f1"] * 1),
        alerts=[_alert("x", "critical"), _alert("y", "critical")],
    )
    result = health(observed)
    assert result.score == 0
    points = [p.points for p in result.parts]
    assert points == sorted(points, reverse=True)
    assert {p.part for p in result.parts} == {
        "latency",
        "error_rate",
        "replicas",
        "drift",
        "alerts",
    }
