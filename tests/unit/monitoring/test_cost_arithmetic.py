"""Cost arithmetic, budget months and thresholds, and the platform figures' formulas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.cost import BudgetRequest, BudgetScope, Prices, ReplicaSpan, check_grouping
from modelhub.domain.monitoring import Window
from modelhub.errors import InvalidInput
from modelhub.monitoring.budgets import crossed, month_label, month_of
from modelhub.monitoring.figures import RunFacts, replica_seconds, training_figures, uptime
from modelhub.monitoring.pricing import (
    combine,
    compute_parts,
    per_thousand,
    replica_parts,
    storage_parts,
    summarize,
    union_seconds,
)

PRICES = Prices(
    cpu_hour=0.04, gpu_hour=2.0, replica_hour=0.1, storage_gb_month=0.02, currency="EUR"
)
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_measured_seconds_times_the_price_table() -> None:
    parts = compute_parts(cpu_seconds=7200, gpu_seconds=1800, prices=PRICES)
    assert parts.cpu == pytest.approx(0.08)
    assert parts.gpu == pytest.approx(1.0)
    assert replica_parts(3 * 3600, PRICES).replicas == pytest.approx(0.3)
    # 5 GB for half of a 30-day month
    assert storage_parts(5 * 10**9, 15 * 86400, PRICES).storage == pytest.approx(0.05)


def test_cost_per_thousand_requests_only_where_requests_were_served() -> None:
    assert per_thousand(0.3, 6000) == pytest.approx(0.05)
    assert per_thousand(0.3, 0) is None
    assert per_thousand(0.3, None) is None
    summary = summarize("deployment:d", replica_parts(3600, PRICES), PRICES, requests=2000)
    assert summary.total == pytest.approx(0.1)
    assert summary.per_1000_requests == pytest.approx(0.05)
    assert summary.currency == "EUR"


def test_combined_summaries_add_parts_and_figures() -> None:
    window = Window(at(0), at(1))
    a = summarize("a", compute_parts(3600, 0, PRICES), PRICES, window, cpu_seconds=3600.0)
    b = summarize("b", replica_parts(3600, PRICES), PRICES, window, requests=100)
    both = combine("model:m", [a, b], PRICES, window)
    assert both.total == pytest.approx(0.14)
    assert both.parts.cpu == pytest.approx(0.04) and both.parts.replicas == pytest.approx(0.1)
    assert both.cpu_seconds == 3600.0 and both.requests == 100
    assert both.per_1000_requests == pytest.approx(1.4)


def test_union_counts_overlapping_time_once_and_clips_to_the_window() -> None:
    window = Window(at(0), at(10))
    intervals = [(at(-2), at(1)), (at(0.5), at(2)), (at(5), at(6)), (at(9), at(12))]
    assert union_seconds(intervals, window) == pytest.approx((2 + 1 + 1) * 3600)
    assert union_seconds([(at(11), at(12))], window) == 0


def test_budget_month_is_the_calendar_month_in_utc() -> None:
    december = month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert december.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert month_label(datetime(2027, 1, 1, tzinfo=UTC)) == "2027-01"


def test_thresholds_crossed() -> None:
    assert crossed(79.99, 100) == []
    assert crossed(80, 100) == [80]
    assert crossed(100, 100) == [80, 100]
    assert crossed(500, 100) == [80, 100]


def test_a_budget_names_exactly_one_target() -> None:
    assert BudgetRequest(monthly=5, tag="team=personas").target() == (
        BudgetScope.TAG,
        "team",
        "personas",
    )
    assert BudgetRequest(monthly=5, user="alice").target() == (BudgetScope.USER, "", "alice")
    for bad in (
        BudgetRequest(monthly=5),
        BudgetRequest(monthly=5, user="a", model="m"),
        BudgetRequest(monthly=5, tag="team"),
        BudgetRequest(monthly=0, model="m"),
    ):
        with pytest.raises(InvalidInput):
            bad.target()


def test_cost_grouping_is_checked() -> None:
    assert check_grouping("tag:team") == "tag:team"
    for bad in ("tag:", "colour", ""):
        with pytest.raises(InvalidInput):
            check_grouping(bad)


def test_training_figures() -> None:
    window = Window(at(0), at(10))
    runs = [
        # queued 1 h, ran 2 h, completed, used 2 CPU-hours
        RunFacts("local", "completed", at(0), at(1), at(3), 7200.0),
        # queued 3 h, ran 1 h, failed
        RunFacts("local", "failed", at(1), at(4), at(5), 1800.0),
        # cancelled: neither success nor failure
        RunFacts("local", "cancelled", at(6), None, at(7), 0.0),
        # finished before the window: not counted
        RunFacts("local", "completed", at(-5), at(-4), at(-3), 3600.0),
    ]
    found = training_figures("local", runs, cpus=4, window=window, now=at(10))
    assert (found.runs_finished, found.runs_completed, found.runs_failed) == (2, 1, 1)
    assert found.success_ratio == pytest.approx(0.5)
    assert found.queue_wait_median_seconds == pytest.approx(2 * 3600)
    assert found.job_seconds_avg == pytest.approx(1.5 * 3600)
    # busy (queued or running) from 0 to 5 and 6 to 7: 6 hours of 4 cores
    assert found.cpu_seconds_available == pytest.approx(4 * 6 * 3600)
    assert found.cpu_seconds_used == pytest.approx(9000.0)
    assert found.utilisation_ratio == pytest.approx(9000 / (24 * 3600))


def test_cpu_of_a_run_is_spread_over_its_running_time() -> None:
    run = RunFacts("local", "completed", at(0), at(0), at(4), 4000.0)
    half = training_figures("local", [run], cpus=1, window=Window(at(2), at(6)), now=at(6))
    assert half.cpu_seconds_used == pytest.approx(2000.0)


def test_uptime_and_replica_seconds_from_spans() -> None:
    def span(pid: int, ready: bool, start: float, end: float | None) -> ReplicaSpan:
        ended = at(end) if end is not None else None
        return ReplicaSpan(
            deployment="d",
            pid=pid,
            ready=ready,
            started_at=at(start),
            ended_at=ended,
            last_seen_at=ended or at(start),
        )

    spans = [
        span(1, False, 0, 0.5),  # starting
        span(1, True, 0.5, 4),  # serving
        span(2, False, 4, 5),  # the replacement starting: nothing ready for an hour
        span(2, True, 5, None),  # serving until now
        span(3, True, 1, 2),  # a second replica for an hour
    ]
    window = Window(at(0), at(10))
    found = uptime("d", spans, window, now=at(10))
    assert found.seconds_observed == pytest.approx(10 * 3600)
    assert found.seconds_up == pytest.approx(8.5 * 3600)
    assert found.uptime_ratio == pytest.approx(0.85)
    assert replica_seconds(spans, window, now=at(10)) == pytest.approx(11 * 3600)
