"""Automated canary analysis over real services and stores (SQLite in tmp_path).

Traffic is test data put in through the real services: per-minute roll-ups (counts
and latency sketches simulated here) recorded with HistoryService.record_minutes as
the replica supervisor records them, and logged predictions written by the replica's
log writer with feedback joined by the PredictionService. Decisions alert through
the real AlertService, read back from the store.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelhub.domain.alerts import Alert
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
from modelhub.errors import InvalidInput
from modelhub.monitoring.rollup import Minute, to_record
from modelhub.services import Services
from modelhub.services.deployments import RolloutRequest
from modelhub.services.monitoring.history import HistoryService
from modelhub.services.registry import RegisterRequest
from modelhub.serving.predlog import Entry, LogTarget, write_file
from modelhub.stores.metadata.base import AuditDraft
from tests.stores import stores_of

ALICE = Caller(name="alice", role=Role.ADMIN)
NAME = "intents"


class Traffic:
    """Serves simulated minutes into the history of deployment `intents`."""

    def __init__(self, history: HistoryService) -> None:
        self.history = history

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
        """`minutes` whole minutes from the one holding `start` (roll-ups start on the
        minute; the analysis' window starts on the canary's first minute)."""
        first = start.replace(second=0, microsecond=0)
        records = []
        for minute in range(minutes):
            at = first + timedelta(minutes=minute)
            served = Minute(int(at.timestamp() // 60), requests=per_minute, rows=per_minute)
            for value in rng.lognormal(np.log(median_ms), 0.5, size=per_minute):
                served.latency.add(float(value))
            errors = int(rng.binomial(per_minute, error_rate))
            if errors:
                served.errors = {"internal": errors}
            records.append(to_record(NAME, NAME, version, served))
        self.history.record_minutes(records)


def canary_alerts(services: Services) -> list[Alert]:
    """The alerts the analysis fired about the deployment, oldest first."""
    found = services.alerts.list_alerts(ALICE, subject=f"deployment:{NAME}")
    return sorted(found, key=lambda alert: alert.id)


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
def traffic(deployed: Services) -> Traffic:
    return Traffic(deployed.history)


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
    deployed: Services, traffic: Traffic
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
    (alert,) = canary_alerts(deployed)
    assert (alert.rule, alert.severity) == ("canary_analysis", "critical")
    assert alert.labels["decision"] == "rollback" and "error_rate" in alert.message
    assert alert.resolved_at is None


def test_a_canary_that_behaves_like_stable_is_promoted(
    deployed: Services, traffic: Traffic
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
    (alert,) = canary_alerts(deployed)
    assert alert.severity == "info" and alert.labels["decision"] == "promote"
    assert alert.resolved_at is not None  # the notice went out; nothing is left to act on
    assert deployed.canary.evaluate_once(start + timedelta(minutes=11)) == []


def test_a_slower_canary_is_rolled_back_on_latency(deployed: Services, traffic: Traffic) -> None:
    start = start_canary(deployed)
    rng = np.random.default_rng(7)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0, median_ms=26.0)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert decision.outcome is CanaryOutcome.ROLLBACK
    assert [v.metric for v in decision.verdicts if v.worse] == [Metric.LATENCY]


def test_the_analysis_waits_for_its_minimum_requests_then_gives_up_to_a_person(
    deployed: Services, traffic: Traffic
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
    (alert,) = canary_alerts(deployed)
    assert alert.severity == "warning" and alert.resolved_at is None
    assert deployed.canary.evaluate_once(start + timedelta(minutes=40)) == []
    deployed.deployments.promote(ALICE, NAME)  # the manual commands stay
    assert deployed.deployments.get(ALICE, NAME).versions == [2]


def test_a_manual_canary_is_left_to_a_person(deployed: Services, traffic: Traffic) -> None:
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
    deployed: Services, traffic: Traffic
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
    deployed: Services, traffic: Traffic
) -> None:
    start = start_canary(deployed, min_requests=100, max_duration="30m")
    traffic.serve(np.random.default_rng(12), 2, start, 10, 20, error_rate=0.0)
    assert deployed.canary.evaluate_once(start + timedelta(minutes=10)) == []
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=30))
    assert decision.outcome is CanaryOutcome.INCONCLUSIVE
    assert "stable served 0 requests" in decision.reason
    assert deployed.deployments.get(ALICE, NAME).versions == [1, 2]


def labelled(
    services: Services, version: int, start: datetime, rows: int, misses: int, kind: str
) -> None:
    """`rows` predictions of `version` logged in the canary's window by the replica's log
    writer, then feedback for each of them: `misses` wrong, the rest right. Classes for
    kind "class" (accuracy); numbers for kind "number", off by 0.1 when right and by 3
    when wrong (mean absolute error)."""
    first = start.replace(second=0, microsecond=0).timestamp()
    items, lines = [], []
    for i in range(rows):
        outputs = {"label": np.array(["yes"])} if kind == "class" else {"score": np.array([1.0])}
        right: object = "yes" if kind == "class" else 1.1
        wrong: object = "no" if kind == "class" else 4.0
        request_id = f"v{version}-{i}"
        items.append(
            Entry(
                name=NAME,
                version=version,
                request_id=request_id,
                at=first + 60 + i * 0.5,
                latency_ms=2.0,
                rows=1,
                inputs={"x": np.zeros((1, 3), np.float32)},
                outputs=outputs,
            )
        )
        lines.append(
            json.dumps({"request_id": request_id, "label": wrong if i < misses else right})
        )
    spool = services.settings.prediction_spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    write_file(spool, LogTarget(NAME, NAME, 1.0, 1000), version, items)
    assert services.predictions.ingest_spool() == 1
    assert services.predictions.feedback(ALICE, NAME, lines).stored == rows


def test_a_less_accurate_canary_is_rolled_back_where_feedback_exists(
    deployed: Services, traffic: Traffic
) -> None:
    start = start_canary(deployed)
    labelled(deployed, 1, start, rows=500, misses=50, kind="class")  # 90 % right
    labelled(deployed, 2, start, rows=500, misses=100, kind="class")  # 80 % right
    rng = np.random.default_rng(13)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert decision.outcome is CanaryOutcome.ROLLBACK
    assert [v.metric for v in decision.verdicts if v.worse] == [Metric.ACCURACY]
    # Each version's own labels: the model's overall 85 % would give 425 and 425.
    assert (decision.stable.correct, decision.canary.correct) == (450, 400)
    assert (decision.stable.labelled, decision.canary.labelled) == (500, 500)


def test_an_error_metric_from_feedback_is_not_taken_for_accuracy(
    deployed: Services, traffic: Traffic
) -> None:
    start = start_canary(deployed)
    labelled(deployed, 1, start, rows=500, misses=0, kind="number")  # mae 0.1
    labelled(deployed, 2, start, rows=500, misses=500, kind="number")  # mae 3.0
    rng = np.random.default_rng(14)
    traffic.serve(rng, 1, start, 10, 180, error_rate=0.0)
    traffic.serve(rng, 2, start, 10, 20, error_rate=0.0)
    (decision,) = deployed.canary.evaluate_once(start + timedelta(minutes=10))
    assert Metric.ACCURACY not in {v.metric for v in decision.verdicts}
    assert decision.canary.labelled == 0
