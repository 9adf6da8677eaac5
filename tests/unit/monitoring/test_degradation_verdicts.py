"""What a verdict says: the test chosen, the minimum-effect guard, too little data, trends."""

from __future__ import annotations

import numpy as np
import pytest
from ddsketch import DDSketch

from modelhub.domain.degradation import DegradationPolicy, Direction, Metric
from modelhub.monitoring.degradation import (
    Traffic,
    degradation,
    error_rate_verdict,
    latency_verdict,
    sketch_sample,
    trend,
)


def sketch_of(values: np.ndarray) -> DDSketch:
    sketch = DDSketch()
    for value in values:
        sketch.add(float(value))
    return sketch


def test_a_significant_but_small_slowdown_is_not_worse() -> None:
    rng = np.random.default_rng(1)
    base = sketch_of(rng.lognormal(np.log(20), 0.2, size=20_000))
    slower = sketch_of(rng.lognormal(np.log(20 * 1.04), 0.2, size=20_000))
    verdict = latency_verdict(base, slower)
    assert verdict.test == "mann-whitney-u"
    assert verdict.significant and not verdict.worse
    assert verdict.direction is Direction.UP
    assert "minimum effect" in verdict.reason


def test_the_minimum_effect_is_a_parameter() -> None:
    rng = np.random.default_rng(1)
    base = sketch_of(rng.lognormal(np.log(20), 0.2, size=20_000))
    slower = sketch_of(rng.lognormal(np.log(20 * 1.04), 0.2, size=20_000))
    assert latency_verdict(base, slower, DegradationPolicy(min_effect=0.02)).worse


def test_too_few_requests_are_not_tested() -> None:
    verdict = error_rate_verdict(0, 1000, 3, 5)
    assert verdict.test == "none" and not verdict.worse
    assert "needs 20" in verdict.reason
    assert latency_verdict(None, sketch_of(np.ones(50))).test == "none"


def test_few_errors_use_fishers_exact_test_and_many_use_chi_squared() -> None:
    assert error_rate_verdict(1, 1000, 6, 100).test == "fisher-exact"
    assert error_rate_verdict(100, 1000, 200, 1000).test == "chi2-contingency"


def test_errors_rising_from_zero_are_worse_with_an_infinite_effect() -> None:
    verdict = error_rate_verdict(0, 2000, 10, 200)
    assert verdict.worse and verdict.effect is None and verdict.baseline == 0.0
    assert "rise from zero" in verdict.reason


def test_fewer_errors_are_better_not_worse() -> None:
    verdict = error_rate_verdict(100, 1000, 20, 1000)
    assert verdict.significant and not verdict.worse
    assert verdict.direction is Direction.DOWN


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="hits"):
        error_rate_verdict(5, 4, 0, 10)


def test_the_report_tests_accuracy_only_where_both_windows_have_feedback() -> None:
    rng = np.random.default_rng(2)
    sketch = sketch_of(rng.lognormal(np.log(20), 0.5, size=500))
    without = degradation(Traffic(500, 0, sketch), Traffic(500, 0, sketch))
    assert [v.metric for v in without.verdicts] == [Metric.ERROR_RATE, Metric.LATENCY]
    with_feedback = degradation(
        Traffic(500, 0, sketch, labelled=500, correct=450),
        Traffic(500, 0, sketch, labelled=500, correct=400),
    )
    assert with_feedback.worse_metrics == [Metric.ACCURACY]
    accuracy = with_feedback.verdicts[-1]
    assert accuracy.effect == pytest.approx(-0.1) and accuracy.effect_kind == "absolute"


def test_a_sketch_sample_is_bounded_and_keeps_the_distribution() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(np.log(20), 0.5, size=50_000)
    sample = sketch_sample(sketch_of(values), 2000)
    assert len(sample) == 2000
    assert np.median(sample) == pytest.approx(np.median(values), rel=0.02)
    assert np.quantile(sample, 0.99) == pytest.approx(np.quantile(values, 0.99), rel=0.03)


def test_a_trend_names_its_direction_and_whether_it_is_bad() -> None:
    slower = trend("p99_ms", 130.0, 100.0, higher_is_worse=True)
    assert slower.direction is Direction.UP and slower.worse
    assert slower.change == pytest.approx(0.3)
    accurate = trend("accuracy", 0.95, 0.9, higher_is_worse=False)
    assert accurate.direction is Direction.UP and not accurate.worse
    assert trend("rps", 100.5, 100.0, higher_is_worse=False).direction is Direction.FLAT
    assert trend("errors", 3.0, 0.0, higher_is_worse=True).worse
    assert trend("rps", None, 1.0, higher_is_worse=False).change is None
