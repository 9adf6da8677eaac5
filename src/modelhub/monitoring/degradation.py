"""Degradation tests: is a window worse than its baseline, by tests rather than thresholds.

Three figures, three tests (all from scipy.stats):

- latency: Mann-Whitney U on latency samples drawn from the two windows' DDSketches.
  A sketch keeps counts per logarithmic bin, not the requests; we take its values at an
  even grid of quantiles, ``(i + 0.5) / n`` for ``n = min(count, max_samples)``, through
  the sketch's public ``get_quantile_value``. That is the sketch's distribution, to its
  relative accuracy (1 %), in at most ``max_samples`` values per side: deterministic (no
  seed to carry), as cheap for a week as for a minute, and it bounds the test's power so
  that millions of requests do not make a negligible shift "significant". A stratified
  grid varies less than a random draw, so the p-value errs on the safe (larger) side.
  Sketches, not the prediction log, because every request lands in a sketch while the log
  holds a sample of them.
- error rate: a two-proportion test on the 2x2 table (errors, successes) x (baseline,
  current): chi-squared with Yates' correction, or Fisher's exact test when an expected
  cell is under 5 (few requests or few errors).
- accuracy, where feedback exists: the same two-proportion test on (correct, wrong).

Each verdict is `worse` only when the change is significant at `alpha`, at least
`min_effect` relative to the baseline (accuracy: `min_accuracy_drop` points), and in
the bad direction (slower, more errors,
less accurate). Too few observations on a side: the test does not run and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ddsketch import DDSketch

from modelhub.domain.degradation import (
    DegradationPolicy,
    DegradationReport,
    Direction,
    Metric,
    Trend,
    Verdict,
)

MANN_WHITNEY = "mann-whitney-u"
CHI2 = "chi2-contingency"
FISHER = "fisher-exact"
NOT_RUN = "none"
DEFAULT_POLICY = DegradationPolicy()


@dataclass(frozen=True)
class Traffic:
    """What one window served: counts, latencies, and feedback where there is some."""

    requests: int
    errors: int
    latency: DDSketch | None = None
    labelled: int = 0
    correct: int = 0


def degradation(
    baseline: Traffic, current: Traffic, policy: DegradationPolicy = DEFAULT_POLICY
) -> DegradationReport:
    """Error rate and latency compared, and accuracy where both windows have feedback."""
    verdicts = [
        error_rate_verdict(
            baseline.errors, baseline.requests, current.errors, current.requests, policy
        ),
        latency_verdict(baseline.latency, current.latency, policy),
    ]
    if baseline.labelled and current.labelled:
        verdicts.append(
            accuracy_verdict(
                baseline.correct, baseline.labelled, current.correct, current.labelled, policy
            )
        )
    return DegradationReport(verdicts=verdicts)


@dataclass(frozen=True)
class WindowTests:
    """The three tests over a baseline window and a current one, under one policy.
    Counts are (requests, errors) for error rates and (labelled, correct) for accuracy."""

    policy: DegradationPolicy = DEFAULT_POLICY

    def latency(self, baseline: DDSketch | None, current: DDSketch | None) -> Verdict:
        return latency_verdict(baseline, current, self.policy)

    def error_rate(self, baseline: tuple[int, int], current: tuple[int, int]) -> Verdict:
        return error_rate_verdict(baseline[1], baseline[0], current[1], current[0], self.policy)

    def accuracy(self, baseline: tuple[int, int], current: tuple[int, int]) -> Verdict:
        return accuracy_verdict(baseline[1], baseline[0], current[1], current[0], self.policy)


def sketch_sample(sketch: DDSketch, max_samples: int) -> np.ndarray:
    """The sketch's values at an even quantile grid: at most `max_samples` of them."""
    count = int(sketch.count)
    size = min(count, max_samples)
    if size == 0:
        return np.empty(0)
    grid = (np.arange(size) + 0.5) / size
    return np.array([sketch.get_quantile_value(float(q)) for q in grid])


def latency_verdict(
    baseline: DDSketch | None,
    current: DDSketch | None,
    policy: DegradationPolicy = DEFAULT_POLICY,
) -> Verdict:
    """Mann-Whitney U on the two windows' latencies; the figure is the median (ms)."""
    n_base = int(baseline.count) if baseline is not None else 0
    n_cur = int(current.count) if current is not None else 0
    base_p50 = _median(baseline)
    cur_p50 = _median(current)
    figures = _Figures(Metric.LATENCY, base_p50, cur_p50, n_base, n_cur)
    if baseline is None or current is None or min(n_base, n_cur) < policy.min_samples:
        return figures.not_tested(policy)
    from scipy import stats  # heavy: imported by the first test, not by `modelhub --help`

    x = sketch_sample(current, policy.max_samples)
    y = sketch_sample(baseline, policy.max_samples)
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    return figures.decide(
        MANN_WHITNEY, float(result.statistic), float(result.pvalue), Direction.UP, policy
    )


def error_rate_verdict(
    base_errors: int,
    base_requests: int,
    cur_errors: int,
    cur_requests: int,
    policy: DegradationPolicy = DEFAULT_POLICY,
) -> Verdict:
    """Two-proportion test on errors per request; more errors is worse."""
    return _proportions(
        Metric.ERROR_RATE,
        base_errors,
        base_requests,
        cur_errors,
        cur_requests,
        Direction.UP,
        policy,
    )


def accuracy_verdict(
    base_correct: int,
    base_labelled: int,
    cur_correct: int,
    cur_labelled: int,
    policy: DegradationPolicy = DEFAULT_POLICY,
) -> Verdict:
    """Two-proportion test on correct answers per labelled prediction; fewer is worse."""
    return _proportions(
        Metric.ACCURACY,
        base_correct,
        base_labelled,
        cur_correct,
        cur_labelled,
        Direction.DOWN,
        policy,
    )


def trend(
    metric: str,
    current: float | None,
    previous: float | None,
    higher_is_worse: bool,
    flat_below: float = 0.01,
) -> Trend:
    """`current` against the previous window: relative change, direction, and whether
    that direction is the bad one. Changes under `flat_below` (relative) are flat."""
    if current is None or previous is None:
        return Trend(
            metric=metric,
            current=current,
            previous=previous,
            change=None,
            direction=Direction.FLAT,
            worse=False,
        )
    change = _relative(previous, current)
    if change is None:  # from zero
        direction = Direction.UP if current > 0 else Direction.FLAT
    elif abs(change) < flat_below:
        direction = Direction.FLAT
    else:
        direction = Direction.UP if change > 0 else Direction.DOWN
    bad = Direction.UP if higher_is_worse else Direction.DOWN
    return Trend(
        metric=metric,
        current=current,
        previous=previous,
        change=change,
        direction=direction,
        worse=direction is bad,
    )


# -- the shared parts ---------------------------------------------------------------------


def _proportions(
    metric: Metric,
    base_hits: int,
    base_n: int,
    cur_hits: int,
    cur_n: int,
    bad: Direction,
    policy: DegradationPolicy,
) -> Verdict:
    for hits, n in ((base_hits, base_n), (cur_hits, cur_n)):
        if n < 0 or not 0 <= hits <= n:
            raise ValueError(f"{metric.value}: counts must satisfy 0 <= hits <= total")
    base_rate = base_hits / base_n if base_n else None
    cur_rate = cur_hits / cur_n if cur_n else None
    figures = _Figures(metric, base_rate, cur_rate, base_n, cur_n)
    if min(base_n, cur_n) < policy.min_samples:
        return figures.not_tested(policy)
    from scipy import stats

    table = np.array([[base_hits, base_n - base_hits], [cur_hits, cur_n - cur_hits]])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() < 5:
        statistic, p_value = stats.fisher_exact(table, alternative="two-sided")
        test = FISHER
    else:
        chi2 = stats.chi2_contingency(table, correction=True)
        statistic, p_value, test = chi2.statistic, chi2.pvalue, CHI2
    return figures.decide(test, float(statistic), float(p_value), bad, policy)


@dataclass(frozen=True)
class _Figures:
    """What a verdict reports whatever the test: the metric, its two values, the counts."""

    metric: Metric
    baseline: float | None
    current: float | None
    n_baseline: int
    n_current: int

    def not_tested(self, policy: DegradationPolicy) -> Verdict:
        reason = (
            f"not tested: {self.n_baseline} baseline and {self.n_current} current "
            f"observations; each side needs {policy.min_samples}"
        )
        return self._verdict(policy, test=NOT_RUN, reason=reason)

    def decide(
        self,
        test: str,
        statistic: float,
        p_value: float,
        bad: Direction,
        policy: DegradationPolicy,
    ) -> Verdict:
        base, cur = self.baseline or 0.0, self.current or 0.0
        absolute = self.metric is Metric.ACCURACY
        effect = cur - base if absolute else _relative(base, cur)
        minimum = policy.min_accuracy_drop if absolute else policy.min_effect
        direction = _direction(base, cur)
        significant = p_value < policy.alpha
        large = effect is None or abs(effect) >= minimum
        worse = significant and large and direction is bad
        if not significant:
            reason = f"no significant change (p={p_value:.3g} >= alpha {policy.alpha:g})"
        elif not large:
            reason = (
                f"significant (p={p_value:.3g}) but the change of {_shown(effect, absolute)} "
                f"is under the minimum effect of {_shown(minimum, absolute)}"
            )
        elif worse:
            reason = f"worse: {_shown(effect, absolute)}, p={p_value:.3g} < alpha {policy.alpha:g}"
        else:
            reason = f"better: {_shown(effect, absolute)}, p={p_value:.3g}"
        return self._verdict(
            policy,
            test=test,
            statistic=statistic,
            p_value=p_value,
            effect=effect,
            effect_kind="absolute" if absolute else "relative",
            direction=direction,
            significant=significant,
            worse=worse,
            reason=reason,
        )

    def _verdict(self, policy: DegradationPolicy, **outcome: Any) -> Verdict:
        return Verdict(
            metric=self.metric,
            baseline=self.baseline,
            current=self.current,
            n_baseline=self.n_baseline,
            n_current=self.n_current,
            alpha=policy.alpha,
            min_effect=(
                policy.min_accuracy_drop if self.metric is Metric.ACCURACY else policy.min_effect
            ),
            **outcome,
        )


def _direction(baseline: float, current: float) -> Direction:
    if current == baseline:
        return Direction.FLAT
    return Direction.UP if current > baseline else Direction.DOWN


def _median(sketch: DDSketch | None) -> float | None:
    if sketch is None or sketch.count == 0:
        return None
    value = sketch.get_quantile_value(0.5)
    return float(value) if value is not None else None


def _relative(baseline: float | None, current: float | None) -> float | None:
    if baseline is None or current is None or baseline == 0:
        return None if current != baseline else 0.0
    return (current - baseline) / baseline


def _shown(effect: float | None, absolute: bool) -> str:
    if effect is None:
        return "a rise from zero"
    return f"{effect * 100:+.1f} points" if absolute else f"{effect:+.1%}"
