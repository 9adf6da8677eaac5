"""The history service over a real SQLite store: minutes merge, hours follow, long
windows read hours, retention deletes by age, and the transports' entry checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.monitoring import ResourceSample, RollupRecord, Window
from modelhub.errors import InvalidInput, NotFound
from modelhub.monitoring import sketches
from modelhub.monitoring.rollup import Minute, to_record
from modelhub.services import Services
from modelhub.services.monitoring.history import HistoryService
from modelhub.stores.metadata.base_history import RollupQuery
from tests.stores import Stores, stores_of
from tests.unit.services.test_registry import req

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
VIEWER = Caller(name="vera", role=Role.VIEWER)


@pytest.fixture
def stores(services: Services) -> Iterator[Stores]:
    with stores_of(services) as opened:
        yield opened


@pytest.fixture
def history(services: Services, stores: Stores) -> HistoryService:
    return HistoryService(services.settings, stores.metadata, services.auth, clock=lambda: NOW)


def piece(
    at: datetime, requests: int, latency: float, version: int = 1, errors: int = 0
) -> RollupRecord:
    minute = Minute(int(at.timestamp() // 60), requests=requests, rows=requests)
    if errors:
        minute.errors = {"internal": errors}
    for _ in range(requests):
        minute.latency.add(latency)
    return to_record("d", "m", version, minute)


def test_pieces_of_one_minute_merge_and_the_hour_follows(
    history: HistoryService, stores: Stores
) -> None:
    at = NOW - timedelta(minutes=30)
    history.record_minutes([piece(at, 10, 5.0)])
    history.record_minutes([piece(at, 5, 50.0, errors=2), piece(at + timedelta(minutes=1), 1, 5.0)])
    query = RollupQuery("minute", at, at + timedelta(minutes=2), deployment="d")
    first, second = stores.metadata.list_rollups(query)
    assert (first.requests, first.errors, second.requests) == (15, 2, 1)
    assert sketches.decode(first.latency).count == 15
    hours = RollupQuery("hour", NOW - timedelta(hours=1), NOW)
    by_deployment = {r.deployment: r for r in stores.metadata.list_rollups(hours)}
    assert set(by_deployment) == {"d", ""}  # the deployment's hour and the model's
    for hour in by_deployment.values():
        assert (hour.requests, hour.errors, hour.start) == (16, 2, NOW - timedelta(hours=1))
        assert sketches.decode(hour.latency).count == 16


def test_short_windows_read_minutes_and_long_ones_hours_with_exact_counts(
    history: HistoryService,
) -> None:
    # One request a minute over the last 26 hours, two versions alternating.
    minutes = [
        piece(NOW - timedelta(minutes=m), 1, 10.0 if m % 2 else 20.0, version=1 + m % 2)
        for m in range(1, 26 * 60 + 1)
    ]
    history.record_minutes(minutes)
    day = history.performance("m", Window.last(timedelta(hours=1), NOW))
    assert (day.requests, day.resolution, len(day.series)) == (60, "minute", 60)
    odd = NOW - timedelta(minutes=26 * 60 - 7, seconds=30)  # not on an hour
    week = history.performance("m", Window(odd, NOW))
    assert week.resolution == "hour"
    assert week.requests == 26 * 60 - 7  # edge minutes read from the minute table
    assert len(week.series) == 26  # edge minutes shown in their hours
    assert week.versions[1].requests + week.versions[2].requests == week.requests
    assert week.p99_ms == pytest.approx(20.0, rel=0.01)
    only_v2 = history.performance("m", Window.last(timedelta(hours=1), NOW), version=2)
    assert only_v2.requests == 30 and only_v2.p50_ms == pytest.approx(10.0, rel=0.01)
    window = Window.last(timedelta(minutes=10), NOW)
    assert history.performance("m", window, deployment="d").requests == 10
    assert history.performance("m", window, deployment="elsewhere").requests == 0
    assert history.counts("d", 1, window) == (5, 0)
    assert history.latency_sketch("d", 2, window).count == 5
    assert history.performance("m", window).trend["requests"].direction == "flat"


def test_resources_run_totals_and_replica_figures(history: HistoryService) -> None:
    def sample(kind: str, subject: str, at: datetime, cpu: float) -> ResourceSample:
        return ResourceSample(kind, subject, 42, at, 25.0, cpu, 2048, interval_seconds=10.0)

    history.record_resources(
        [
            sample("training", "3", NOW - timedelta(seconds=20), 4.0),
            sample("training", "3", NOW - timedelta(seconds=10), 9.0),
            sample("replica", "d", NOW - timedelta(minutes=5), 1.0),
            sample("replica", "d", NOW - timedelta(minutes=4), 2.0),
        ]
    )
    used = history.run_resources(3)
    # Memory and GPU come from the samples; CPU-seconds only from the run's usage ledger
    # (the figure its cost is priced from), where run 3 has none: never a second figure.
    assert (used.peak_rss_bytes, used.gpu_seconds, used.cpu_seconds) == (2048, 0.0, 0.0)
    history.record_minutes([piece(NOW - timedelta(minutes=5), 3, 1.0)])
    # Resource figures are the samples of the model's deployments: here one, named.
    summary = history.performance("m", Window.last(timedelta(hours=1), NOW), deployment="d")
    assert (summary.cpu_percent, summary.rss_bytes, summary.gpu_util) == (25.0, 2048, None)


def test_cleanup_deletes_by_retention_once_and_from_its_thread(
    services: Services, stores: Stores, history: HistoryService
) -> None:
    history.record_minutes([piece(NOW - timedelta(days=8), 1, 1.0), piece(NOW, 1, 1.0)])
    purged = history.cleanup()
    assert (purged.minutes, purged.hours) == (2, 0)  # deployment's and model's; hours stay
    history.record_minutes([piece(NOW - timedelta(days=9), 1, 1.0)])
    everything = RollupQuery(
        "minute", NOW - timedelta(days=30), NOW + timedelta(days=1), deployment="d"
    )
    history.start_cleanup()
    try:
        deadline = time.monotonic() + 10
        while len(stores.metadata.list_rollups(everything)) != 1:
            assert time.monotonic() < deadline, "the cleanup thread did not run"
            time.sleep(0.01)
    finally:
        history.stop_cleanup()


def test_the_transports_entry_checks_its_input(
    services: Services, history: HistoryService, safetensors_file: Path
) -> None:
    services.registry.register(req("m"), safetensors_file, "alice")
    history.record_minutes([piece(NOW - timedelta(minutes=1), 4, 2.0)])
    assert history.performance_for(VIEWER, "m", "1h").requests == 4
    with pytest.raises(NotFound, match="nope"):
        history.performance_for(VIEWER, "nope")
    with pytest.raises(InvalidInput, match="since"):
        history.performance_for(VIEWER, "m", "yesterday")
    with pytest.raises(InvalidInput, match="version"):
        history.performance_for(VIEWER, "m", "1h", version=0)
    with pytest.raises(InvalidInput, match="version"):
        history.performance_for(VIEWER, "m", "1h", version=2**40)
    with pytest.raises(InvalidInput, match="time zone"):
        history.performance("m", Window(datetime(2026, 1, 1), datetime(2026, 1, 2)))
    with pytest.raises(InvalidInput, match="end after"):
        history.performance("m", Window(NOW, NOW))


def test_recent_traffic_sums_each_deployment_in_one_read(history: HistoryService) -> None:
    recent = NOW - timedelta(minutes=5)
    other = Minute(int(recent.timestamp() // 60), requests=3, rows=3)
    for _ in range(3):
        other.latency.add(100.0)
    history.record_minutes(
        [
            piece(recent, 8, 10.0, version=1),
            piece(recent + timedelta(minutes=1), 2, 10.0, version=2, errors=1),
            piece(NOW - timedelta(hours=2), 50, 900.0),  # before the window
            to_record("e", "m", 1, other),
        ]
    )
    found = history.recent_traffic(VIEWER, ["d", "e", "idle"], "1h")
    assert set(found) == {"d", "e"}  # "idle" served nothing in the hour
    d, e = found["d"], found["e"]
    assert (d.requests, d.errors) == (10, 1)
    assert d.p50_ms == pytest.approx(10.0, rel=0.02) and d.p99_ms == pytest.approx(10.0, rel=0.02)
    assert (e.requests, e.p99_ms) == (3, pytest.approx(100.0, rel=0.02))
    assert history.recent_traffic(VIEWER, []) == {}
    with pytest.raises(InvalidInput, match="24h"):
        history.recent_traffic(VIEWER, ["d"], "2d")
