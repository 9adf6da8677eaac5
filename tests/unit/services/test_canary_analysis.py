"""Automated canary analysis over real services and stores (SQLite in tmp_path).

Traffic is test data: an in-memory implementation of the ServedTraffic protocol that
the history lane's HistoryService provides on a server, filled with per-minute
counts and latency sketches simulated here. Alerts land in a list, through the
protocol the alert engine implements.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ddsketch import DDSketch

from modelhub.domain.auth import Caller, Role
from modelhub.domain.canary import CanaryOutcome
from modelhub.domain.degradation import Metric
from modelhub.domain.deployments import (
    AnalysisMode,
    Deployment,
    DeploymentStatus,
    Environment,
    TrafficShare,
)
from modelhub.domain.monitoring import Window
from modelhub.errors import InvalidInput
from modelhub.services import Services
from modelhub.services.deployments import RolloutRequest
from modelhub.services.registry import RegisterRequest
from modelhub.stores.metadata.base import AuditDraft
from tests.stores import stores_of

ALICE = Caller(name="alice", role=Role.ADMIN)
NAME = "intents"


@dataclass
class SimulatedTraffic:
    """Per-minute roll-ups per (deployment, version): requests, errors, latency sketch."""

    minutes: dict[tuple[str, int], list[tuple[datetime, int, int, DDSketch]]] = field(
        default_factory=dict
    )

    def serve(
        self,
        rng: np.random.Generator,
        version: int,
        start: datetime,
        minutes: int,
        per_minute: int,
        error_rate: float,
        median_ms: float = 20.0,
    ) -> None:
        for minute in range(minutes):
            sketch = DDSketch()
            for value in rng.lognormal(np.log(median_ms), 0.5, size=per_minute):
                sketch.add(float(value))
            errors = int(rng.binomial(per_minute, error_rate))
            at = start + timedelta(minutes=minute)
            self.minutes.setdefault((NAME, version), []).append((at, per_minute, errors, sketch))

    def _within(
        self, deployment: str, version: int, window: Window
    ) -> list[tuple[int, int, DDSketch]]:
        return [
            (requests, errors, sketch)
            for at, requests, errors, sketch in self.minutes.get((deployment, version), [])
            if window.start <= at < window.end
        ]

    def counts(self, deployment: str, version: int, window: Window) -> tuple[int, int]:
        rows = self._within(deployment, version, window)
        return sum(r for r, _, _ in rows), sum(e for _, e, _ in rows)

    def latency_sketch(self, deployment: str, version: int, window: Window) -> DDSketch:
        merged = DDSketch()
        for _, _, sketch in self._within(deployment, version, window):
            merged.merge(sketch)
        return merged


@dataclass
class AlertLog:
    fired: list[tuple[str, str, str, str, dict[str, str]]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)

    def fire(
        self, subject: str, rule: str, severity: str, message: str, labels: dict[str, str]
    ) -> object:
        self.fired.append((subject, rule, severity, message, labels))
        return None

    def resolve(self, subject: str, rule: str) -> None:
        self.resolved.append((subject, rule))


@pytest.fixture
def deployed(services: Services, onnx_file: Path) -> Services:
    """`intents` versions 1 and 2, version 1 running (as a server would have it)."""
    for _ in range(2):
        services.registry.register(
            RegisterRequest(name=NAME, type="classification"), onnx_file, "alice"
        )
    now = datetime.now(UTC)
    with stores_of(services) as stores:
        stores.metadata.create_deployment(
            Deployment(
                name=NAME,
                model=NAME,
                environment=Environment.STAGING,
                traffic=[TrafficShare(version=1, percent=100)],
                replicas=1,
                status=DeploymentStatus.RUNNING,
                created_by="alice",
                created_at=now,
                updated_at=now,
            ),
            AuditDraft("alice", "deployments.create", NAME, {}),
        )
    return services


@pytest.fixture
def traffic(deployed: Services) -> SimulatedTraffic:
    simulated = SimulatedTraffic()
    deployed.canary.traffic = simulated
    return simulated


@pytest.fixture
def alerts(deployed: Services) -> AlertLog:
    log = AlertLog()
    deployed.canary.alerts = log
    return log


def start_canary(services: Services, **options: Any) -> datetime:
    request = RolloutRequest(
        deployment=NAME,
        version="2",
        canary=10,
        analysis=AnalysisMode.AUTO,
        **options,
    )
    changed = services.deployments.update(ALICE, request)
    assert changed.rollout is not None and changed.rollout.analysis is not None
    return changed.rollout.analysis.started_at


def test_a_canary_failing_5_percent_of_requests_is_rolled_back(
    deployed: Services, traffic: SimulatedTraffic, alerts: AlertLog
) -> None:
    start = start_canary(deployed)
    rng = np.random.default_rng(5)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.005)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.05)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert decision.outcome is CanaryOutcome.ROLLBACK
    assert decision.canary.requests == 200 and decision.stable.requests == 1800
    error_rate = next(v for v in decision.verdicts if v.metric is Metric.ERROR_RATE)
    assert error_rate.worse and error_rate.p_value is not None and error_rate.p_value < 0.05
    after = deployed.deployments.get(ALICE, NAME)
    assert after.versions == [1] and after.rollout is None
    assert after.status is DeploymentStatus.RUNNING
    assert deployed.canary.decisions(ALICE, NAME) == [decision]
    actions = [(e.actor, e.action) for e in deployed.audit.list(ALICE, target=NAME)]
    assert ("system", "deployments.canary_decision") in actions
    assert ("system", "deployments.rollback") in actions
    ((subject, rule, severity, message, labels),) = alerts.fired
    assert (subject, rule, severity) == (f"deployment:{NAME}", "canary_analysis", "critical")
    assert labels["decision"] == "rollback" and "error_rate" in message
    assert alerts.resolved == []


def test_a_canary_that_behaves_like_stable_is_promoted(
    deployed: Services, traffic: SimulatedTraffic, alerts: AlertLog
) -> None:
    start = start_canary(deployed)
    rng = np.random.default_rng(6)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.005)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.005)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert decision.outcome is CanaryOutcome.PROMOTE, decision.reason
    assert {v.metric for v in decision.verdicts} == {Metric.ERROR_RATE, Metric.LATENCY}
    after = deployed.deployments.get(ALICE, NAME)
    assert after.versions == [2] and after.previous_version == 1
    assert alerts.fired[0][2] == "info"
    assert alerts.resolved == [(f"deployment:{NAME}", "canary_analysis")]
    assert deployed.canary.evaluate_once(start + timedelta(minutes=11)) == []


def test_a_slower_canary_is_rolled_back_on_latency(
    deployed: Services, traffic: SimulatedTraffic
) -> None:
    start = start_canary(deployed)
    rng = np.random.default_rng(7)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0, median_ms=26.0)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert decision.outcome is CanaryOutcome.ROLLBACK
    assert [v.metric for v in decision.verdicts if v.worse] == [Metric.LATENCY]


def test_the_analysis_waits_for_its_minimum_requests_then_gives_up_to_a_person(
    deployed: Services, traffic: SimulatedTraffic, alerts: AlertLog
) -> None:
    start = start_canary(deployed, min_requests=500, max_duration="30m")
    rng = np.random.default_rng(8)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0)
    assert deployed.canary.evaluate_once(start + timedelta(minutes=10)) == []
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=31))
    assert decision.outcome is CanaryOutcome.INCONCLUSIVE
    assert "200 of the 500" in decision.reason and decision.verdicts == []
    still = deployed.deployments.get(ALICE, NAME)
    assert still.versions == [1, 2] and still.status is DeploymentStatus.UPDATING
    assert alerts.fired[0][2] == "warning"
    assert deployed.canary.evaluate_once(start + timedelta(minutes=40)) == []
    deployed.deployments.promote(ALICE, NAME)  # the manual commands stay
    assert deployed.deployments.get(ALICE, NAME).versions == [2]


def test_a_manual_canary_is_left_to_a_person(deployed: Services, traffic: SimulatedTraffic) -> None:
    changed = deployed.deployments.update(
        ALICE, RolloutRequest(deployment=NAME, version="2", canary=10)
    )
    assert changed.rollout is not None and changed.rollout.analysis is None
    traffic.serve(np.random.default_rng(9), 2, datetime.now(UTC), 10, 100, error_rate=0.5)
    assert deployed.canary.evaluate_once(datetime.now(UTC) + timedelta(hours=2)) == []
    assert deployed.canary.decisions(ALICE, NAME) == []


def test_the_rollout_records_its_analysis_from_settings_and_overrides(
    deployed: Services,
) -> None:
    start_canary(deployed, alpha=0.01)
    rollout = deployed.deployments.get(ALICE, NAME).rollout
    assert rollout is not None and rollout.analysis is not None
    analysis = rollout.analysis
    assert analysis.mode is AnalysisMode.AUTO and analysis.alpha == 0.01
    settings = deployed.settings
    assert analysis.min_requests == settings.canary_min_requests
    assert analysis.max_seconds == settings.canary_max_seconds
    assert deployed.canary.status(ALICE, NAME).analysis == analysis


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"canary": None}, "canary"),
        ({"alpha": 1.5}, "alpha"),
        ({"max_duration": "soon"}, "max_duration"),
        ({"min_requests": 0}, "min_requests"),
        ({"analysis": "sometimes"}, "analysis"),
        ({"analysis": "manual", "alpha": 0.01}, "analysis"),
    ],
)
def test_bad_analysis_options_are_refused_and_change_nothing(
    deployed: Services, options: dict[str, Any], field: str
) -> None:
    before = deployed.audit.list(ALICE, target=NAME)
    values: dict[str, Any] = {"canary": 10, "analysis": "auto", **options}
    with pytest.raises(InvalidInput) as caught:
        deployed.deployments.update(
            ALICE,
            RolloutRequest(deployment=NAME, version="2", **values),
        )
    assert caught.value.details["field"] == field
    after = deployed.deployments.get(ALICE, NAME)
    assert after.status is DeploymentStatus.RUNNING and after.rollout is None
    assert deployed.audit.list(ALICE, target=NAME) == before


def test_the_server_loop_decides_on_its_own_and_stops_when_asked(
    deployed: Services, traffic: SimulatedTraffic
) -> None:
    start = start_canary(deployed)
    rng = np.random.default_rng(10)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0)
    deployed.canary.clock = lambda: start + timedelta(minutes=11)
    deployed.canary.start(interval_seconds=0.02)
    try:
        deadline = time.monotonic() + 10
        while not deployed.canary.decisions(ALICE, NAME) and time.monotonic() < deadline:
            time.sleep(0.02)  # polling a condition, with a deadline
    finally:
        deployed.canary.stop()
    assert [d.outcome for d in deployed.canary.decisions(ALICE, NAME)] == [CanaryOutcome.PROMOTE]
    assert deployed.deployments.get(ALICE, NAME).versions == [2]


def test_a_canary_with_no_stable_traffic_beside_it_is_never_promoted_untested(
    deployed: Services, traffic: SimulatedTraffic
) -> None:
    start = start_canary(deployed, min_requests=100, max_duration="30m")
    traffic.serve(np.random.default_rng(12), 2, start, 10, 20, error_rate=0.0)
    assert deployed.canary.evaluate_once(start + timedelta(minutes=10)) == []
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=30))
    assert decision.outcome is CanaryOutcome.INCONCLUSIVE
    assert "stable served 0 requests" in decision.reason
    assert deployed.deployments.get(ALICE, NAME).versions == [1, 2]


@dataclass(frozen=True)
class Accuracy:
    metric: str
    value: float | None
    labelled: int


@dataclass
class Feedback:
    """Accuracy per version from feedback, as lane predictions' PredictionService gives it."""

    per_version: dict[int, Accuracy]
    asked: list[tuple[str, int | None]] = field(default_factory=list)

    def accuracy(self, model: str, window: Window, version: int | None = None) -> Accuracy:
        self.asked.append((model, version))
        return self.per_version.get(version or 0, Accuracy("accuracy", None, 0))


def test_a_less_accurate_canary_is_rolled_back_where_feedback_exists(
    deployed: Services, traffic: SimulatedTraffic
) -> None:
    feedback = Feedback({1: Accuracy("accuracy", 0.9, 500), 2: Accuracy("accuracy", 0.8, 500)})
    deployed.canary.feedback = feedback
    start = start_canary(deployed)
    rng = np.random.default_rng(13)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert decision.outcome is CanaryOutcome.ROLLBACK
    assert [v.metric for v in decision.verdicts if v.worse] == [Metric.ACCURACY]
    assert (decision.stable.correct, decision.canary.correct) == (450, 400)
    assert sorted(feedback.asked) == [(NAME, 1), (NAME, 2)]


def test_an_error_metric_from_feedback_is_not_taken_for_accuracy(
    deployed: Services, traffic: SimulatedTraffic
) -> None:
    deployed.canary.feedback = Feedback(
        {1: Accuracy("mae", 0.1, 500), 2: Accuracy("mae", 3.0, 500)}
    )
    start = start_canary(deployed)
    rng = np.random.default_rng(14)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert Metric.ACCURACY not in {v.metric for v in decision.verdicts}
    assert decision.canary.labelled == 0
