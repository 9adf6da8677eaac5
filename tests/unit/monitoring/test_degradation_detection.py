"""Detection quality of the degradation tests, on simulated traffic with fixed seeds.

Each test measures both sides: how often a real change is caught, and how often
unchanged traffic raises a false alarm under the same procedure.
"""

from __future__ import annotations

import numpy as np
from ddsketch import DDSketch

from modelhub.monitoring.degradation import (
    accuracy_verdict,
    error_rate_verdict,
    latency_verdict,
)

TRIALS = 100
RATE_PER_MINUTE = 120  # 2 requests per second
BASELINE_MINUTES = 10
MEDIAN_MS, SIGMA = 20.0, 0.5  # lognormal latencies: median 20 ms, a long right tail


def minute_sketch(rng: np.random.Generator, slowdown: float) -> DDSketch:
    """One minute of latencies as a replica reports them: a DDSketch."""
    sketch = DDSketch()
    for value in rng.lognormal(np.log(MEDIAN_MS * slowdown), SIGMA, size=RATE_PER_MINUTE):
        sketch.add(float(value))
    return sketch


def minutes_to_detect(rng: np.random.Generator, slowdown: float, looks: int = 5) -> int | None:
    """Baseline: the 10 minutes before; then one look per minute over the minutes since."""
    baseline = DDSketch()
    for _ in range(BASELINE_MINUTES):
        baseline.merge(minute_sketch(rng, 1.0))
    current = DDSketch()
    for minute in range(1, looks + 1):
        current.merge(minute_sketch(rng, slowdown))
        if latency_verdict(baseline, current).worse:
            return minute
    return None


def test_a_30_percent_latency_regression_is_caught_within_5_minutes() -> None:
    rng = np.random.default_rng(11)
    caught = [minutes_to_detect(rng, 1.3) for _ in range(TRIALS)]
    detected = sum(minute is not None for minute in caught)
    assert detected >= 95, f"caught {detected}/{TRIALS} within 5 minutes"


def test_unchanged_latency_raises_at_most_5_percent_false_alarms_over_5_looks() -> None:
    rng = np.random.default_rng(12)
    alarms = sum(minutes_to_detect(rng, 1.0) is not None for _ in range(TRIALS))
    assert alarms <= 5, f"{alarms}/{TRIALS} false alarms"


def test_a_faster_version_is_not_worse() -> None:
    rng = np.random.default_rng(13)
    assert all(minutes_to_detect(rng, 0.7) is None for _ in range(20))


def accuracy_flags(rng: np.random.Generator, before: float, after: float, labelled: int) -> int:
    flagged = 0
    for _ in range(TRIALS * 5):
        base = int(rng.binomial(labelled, before))
        cur = int(rng.binomial(labelled, after))
        flagged += accuracy_verdict(base, labelled, cur, labelled).worse
    return flagged


def test_an_accuracy_drop_from_90_to_80_percent_is_caught_from_500_labels() -> None:
    flagged = accuracy_flags(np.random.default_rng(21), 0.9, 0.8, 500)
    assert flagged >= 0.95 * TRIALS * 5, f"caught {flagged}/{TRIALS * 5}"


def test_unchanged_accuracy_raises_at_most_5_percent_false_alarms() -> None:
    flagged = accuracy_flags(np.random.default_rng(22), 0.9, 0.9, 500)
    assert flagged <= 0.05 * TRIALS * 5, f"{flagged}/{TRIALS * 5} false alarms"


def canary_flags(rng: np.random.Generator, canary_rate: float) -> int:
    """10 % canary: 200 canary and 1,800 stable requests; stable fails 0.5 % of them."""
    flagged = 0
    for _ in range(TRIALS * 5):
        stable = int(rng.binomial(1800, 0.005))
        canary = int(rng.binomial(200, canary_rate))
        flagged += error_rate_verdict(stable, 1800, canary, 200).worse
    return flagged


def test_a_canary_failing_5_percent_of_requests_is_worse() -> None:
    flagged = canary_flags(np.random.default_rng(31), 0.05)
    assert flagged >= 0.95 * TRIALS * 5, f"caught {flagged}/{TRIALS * 5}"


def test_a_canary_that_behaves_like_stable_is_not_worse() -> None:
    flagged = canary_flags(np.random.default_rng(32), 0.005)
    assert flagged <= 0.05 * TRIALS * 5, f"{flagged}/{TRIALS * 5} false alarms"
