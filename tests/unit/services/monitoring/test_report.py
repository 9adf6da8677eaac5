"""MonitorService over real registry and deployment services, with the other monitoring
lanes played by small in-memory sources written here (test data, not mocks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from ddsketch import DDSketch

from modelhub.domain.auth import Caller, Role, Scope
from modelhub.domain.monitoring import Window
from modelhub.domain.predictions import AccuracyPoint, AccuracySummary, VersionAccuracy
from modelhub.domain.records import Lineage
from modelhub.errors import InvalidInput, NotFound, Unavailable
from modelhub.monitoring.degradation import WindowTests
from modelhub.monitoring.observations import Objectives
from modelhub.services import Services
from modelhub.services.deployments import DeployRequest
from modelhub.services.monitoring.report import MonitorService, MonitorSources
from modelhub.services.registry import RegisterRequest

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ADMIN = Caller(name="dana", role=Role.ADMIN)
VIEWER = Caller(name="vic", role=Role.VIEWER, scopes=frozenset({Scope.READ}))


@dataclass(frozen=True)
class Minute:
    at: datetime
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class VersionPerf:
    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Perf:
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    per_version: Mapping[int, VersionPerf]
    minutes: Sequence[Minute]
    latency_sketch: DDSketch = field(default_factory=DDSketch)
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    rows: int = 0
    throughput_rps: float = 1.0
    in_flight_peak: int = 1
    cpu_percent: float | None = 12.5
    rss_bytes: int | None = 200_000_000
    gpu_util: float | None = None
    gpu_memory_bytes: int | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def perf(version: int, requests: int, errors: int, p99: float, start: datetime) -> Perf:
    minutes = [
        Minute(start + timedelta(minutes=i), requests // 60, errors // 60, 4.0, 8.0, p99)
        for i in range(60)
    ]
    figures = VersionPerf(requests, errors, errors / requests, 4.0, p99)
    sketch = DDSketch()  # both windows' latencies from one distribution: not degraded
    for value in np.random.default_rng(7).lognormal(np.log(4.0), 0.3, requests):
        sketch.add(float(value))
    return Perf(requests, errors, 4.0, 8.0, p99, {version: figures}, minutes, sketch)


@dataclass
class History:
    """Version 1 served the previous window well; this window is version 2's, failing."""

    asked: list[tuple[Window, int | None]] = field(default_factory=list)

    def performance(
        self, model: str, window: Window, version: int | None = None, deployment: str | None = None
    ) -> Perf:
        self.asked.append((window, version))
        if window.end <= NOW - timedelta(hours=24):
            return perf(1, 6000, 12, 10.0, window.start)
        return perf(2, 6000, 300, 11.0, window.start)


def accuracy_figures(
    window: Window, value: float | None, labelled: int, version: int, series: bool = False
) -> AccuracySummary:
    return AccuracySummary(
        model="persona-intents",
        metric="accuracy",
        value=value,
        labelled=labelled,
        predictions=6000,
        start=window.start,
        end=window.end,
        per_version=[
            VersionAccuracy(version=version, value=value, labelled=labelled, predictions=6000)
        ],
        series=[AccuracyPoint(start=window.start, value=value, labelled=labelled)]
        if series and value is not None
        else [],
    )


class Feedback:
    def accuracy(self, model: str, window: Window, version: int | None = None) -> AccuracySummary:
        if window.end <= NOW - timedelta(hours=24):
            return accuracy_figures(window, 0.9, 500, 1)
        return accuracy_figures(window, 0.8, 500, 2, series=True)


class NoFeedback:
    def accuracy(self, model: str, window: Window, version: int | None = None) -> AccuracySummary:
        return accuracy_figures(window, None, 0, 2)


@dataclass(frozen=True)
class Verdict:
    feature: str
    test: str
    statistic: float
    p_value: float | None
    distance: float | None
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftFigures:
    features: Sequence[Verdict]
    drifted: bool
    drifted_features: Sequence[str]


class Drifting:
    def check(self, model: str, version: int, window: Window) -> DriftFigures:
        verdicts = [
            Verdict("age", "Kolmogorov-Smirnov", 0.4, 1e-9, None, 0.05, True),
            Verdict("city", "chi-squared", 1.2, 0.7, None, 0.05, False),
        ]
        return DriftFigures(verdicts, True, ["age"])


class NoReference:
    def check(self, model: str, version: int, window: Window) -> DriftFigures:
        raise NotFound(f"no reference profile for {model}@{version}")


class Down:
    def check(self, model: str, version: int, window: Window) -> DriftFigures:
        raise Unavailable("the drift store is being migrated")


@dataclass(frozen=True)
class AlertFigures:
    id: int
    subject: str
    rule: str
    severity: str
    message: str
    state: str
    fired_at: datetime
    resolved_at: datetime | None = None


class Alerts:
    def fired(self, model: str, window: Window) -> list[AlertFigures]:
        return [
            AlertFigures(
                7,
                f"deployment:{model}",
                "error_rate",
                "critical",
                "5% errors",
                "firing",
                NOW - timedelta(hours=1),
            )
        ]


@dataclass(frozen=True)
class CostFigures:
    total: float
    currency: str = "USD"


class Costs:
    def model_cost(self, model: str, window: Window) -> CostFigures:
        return CostFigures(3.0 if window.end <= NOW - timedelta(hours=24) else 6.0)


def _service(services: Services, sources: MonitorSources) -> MonitorService:
    return MonitorService(
        services.registry, services.deployments, services.auth, Objectives(), sources, lambda: NOW
    )


@pytest.fixture
def intents(services: Services, safetensors_file: Path) -> str:
    """Two versions of `intents`; the second trained by pipeline intents-train, deployed."""
    for _ in range(2):
        lineage = Lineage(source_run="17", pipeline="intents-train")
        services.registry.register(
            RegisterRequest(name="intents", type="classification", lineage=lineage),
            safetensors_file,
            "dana",
        )
    services.deployments.deploy(ADMIN, DeployRequest(ref="intents@2", name="intents-dev"))
    return "intents"


def test_with_no_monitoring_source_the_report_renders_and_says_why_each_part_is_empty(
    services: Services, intents: str
) -> None:
    report = _service(services, MonitorSources()).report(VIEWER, intents, "24h")
    assert report.health.score == 100 and report.recommendations == []
    assert report.performance is None and report.drift is None and report.cost is None
    assert set(report.notes) == {
        "performance",
        "accuracy",
        "drift",
        "degradation",
        "alerts",
        "cost",
    }
    assert [d.name for d in report.deployments] == ["intents-dev"]
    assert (report.start, report.end, report.since) == (NOW - timedelta(hours=24), NOW, "24h")


def test_a_full_report_composes_every_source(services: Services, intents: str) -> None:
    history = History()
    sources = MonitorSources(
        history=history,
        predictions=Feedback(),
        drift=Drifting(),
        degradation=WindowTests(),
        alerts=Alerts(),
        cost=Costs(),
    )
    report = _service(services, sources).report(ADMIN, intents, "24h")
    window = Window.last(timedelta(hours=24), NOW)
    assert history.asked == [(window, None), (window.previous(), None)]
    assert report.performance is not None and report.performance.error_rate == 0.05
    assert len(report.performance.series) == 60
    assert {(v.metric, v.degraded) for v in report.degradation} == {
        ("latency", False),
        ("error_rate", True),
        ("accuracy", True),
    }
    assert report.drift is not None and report.drift.drifted_features == ["age"]
    assert report.accuracy is not None and report.accuracy.previous == 0.9
    assert report.cost is not None and report.cost.per_1000_requests == pytest.approx(1.0)
    assert [a.rule for a in report.alerts] == ["error_rate"]
    parts = {p.part for p in report.health.parts}
    assert parts == {"error_rate", "degradation", "drift", "accuracy", "alerts"}
    assert report.health.score == 100 - round(sum(p.points for p in report.health.parts))
    kinds = {r.kind: r for r in report.recommendations}
    assert set(kinds) == {"roll_back", "retrain"}
    assert kinds["roll_back"].figures == {
        "deployment": "intents-dev",
        "from_version": 2,
        "to_version": 1,
    }
    assert kinds["retrain"].command == "modelhub pipelines start intents-train"
    trend = {t.metric: t for t in report.trends}
    assert trend["error_rate"].direction == "up" and trend["cost"].change == 1.0
    assert report.notes == {}


def test_one_version_is_asked_of_every_source(services: Services, intents: str) -> None:
    history = History()
    report = _service(services, MonitorSources(history=history)).report(ADMIN, intents, "2h", 1)
    assert report.version == 1
    assert [version for _, version in history.asked] == [1, 1]


def test_a_version_without_a_drift_reference_gets_the_recommendation_to_set_one(
    services: Services, intents: str
) -> None:
    report = _service(services, MonitorSources(drift=NoReference())).report(ADMIN, intents)
    assert "no drift reference for intents@2" in report.notes["drift"]
    [found] = report.recommendations
    assert found.command == "modelhub monitor reference intents@2 --data FILE"


def test_a_source_that_fails_leaves_a_note_and_the_rest_of_the_report(
    services: Services, intents: str
) -> None:
    sources = MonitorSources(drift=Down(), predictions=NoFeedback(), history=History())
    report = _service(services, sources).report(ADMIN, intents)
    assert report.notes["drift"] == "drift: the drift store is being migrated"
    assert report.notes["accuracy"].startswith("no feedback in the window (6000 predictions")
    assert report.performance is not None and report.performance.requests == 6000
    assert [r.kind for r in report.recommendations] == ["roll_back"]  # from history alone


def test_bad_requests_are_refused_by_name(services: Services, intents: str) -> None:
    monitor = _service(services, MonitorSources())
    with pytest.raises(NotFound, match="nope"):
        monitor.report(ADMIN, "nope")
    with pytest.raises(NotFound):
        monitor.report(ADMIN, intents, "24h", 9)
    for since in ("yesterday", "0h", "91d"):
        with pytest.raises(InvalidInput, match="since") as caught:
            monitor.report(ADMIN, intents, since)
        assert caught.value.details["field"] == "since"


def test_a_version_sees_only_the_deployments_that_serve_it(
    services: Services, intents: str
) -> None:
    monitor = _service(services, MonitorSources())
    assert [d.name for d in monitor.report(ADMIN, intents, "1h", 2).deployments] == ["intents-dev"]
    report = monitor.report(ADMIN, intents, "1h", 1)
    assert report.deployments == []
    assert report.notes["deployments"] == "no live deployment serves intents@1"


def test_a_models_tag_sets_its_own_latency_objective(services: Services, intents: str) -> None:
    monitor = _service(services, MonitorSources(history=History()))
    assert "latency" not in {p.part for p in monitor.report(ADMIN, intents).health.parts}
    services.registry.update_model(intents, "dana", tags={"p99_objective_ms": "5"})
    parts = {p.part: p for p in monitor.report(ADMIN, intents).health.parts}
    assert "against objective 5.0 ms" in parts["latency"].figure
    services.registry.update_model(intents, "dana", tags={"p99_objective_ms": "fast"})
    assert "latency" not in {p.part for p in monitor.report(ADMIN, intents).health.parts}
