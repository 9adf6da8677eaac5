"""MonitorService over the real services: history, prediction log and feedback, drift,
degradation tests, alerts and cost, each holding data the test put in through its
public methods (SQLite and artifacts in tmp_path), the report's clock fixed at NOW.

The story: version 1 served the day before yesterday well; today version 2 serves
through deployment intents-dev with 5 % errors and worse accuracy, its input `age`
has drifted, an error-rate rule fired, and its replica ran twice as long.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.alerts import AlertRuleDraft, ScopeKind
from modelhub.domain.alerts import Scope as AlertScope
from modelhub.domain.auth import Caller, Role, Scope
from modelhub.domain.records import Lineage
from modelhub.errors import InvalidInput, NotFound
from modelhub.monitoring.degradation import WindowTests
from modelhub.monitoring.observations import Objectives
from modelhub.monitoring.rollup import Minute, to_record
from modelhub.services import Services, build_services
from modelhub.services.deployments import DeployRequest
from modelhub.services.monitoring.drift import DriftService
from modelhub.services.monitoring.report import MonitorService, MonitorSources
from modelhub.services.registry import RegisterRequest
from modelhub.serving.predlog import Entry, LogTarget, write_file
from modelhub.settings import Settings
from tests.stores import Stores

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ADMIN = Caller(name="dana", role=Role.ADMIN)
VIEWER = Caller(name="vic", role=Role.VIEWER, scopes=frozenset({Scope.READ}))
TODAY = NOW - timedelta(hours=2)  # version 2's hour of traffic
BEFORE = NOW - timedelta(hours=30)  # version 1's hour, in the previous 24 h window
CITIES = np.array(["paris", "lyon", "nice"], dtype=object)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """A replica-hour at 0.25 and free storage: the cost is the replica's time alone."""
    settings = Settings(
        home=tmp_path / "home",
        gc_grace_seconds=3600,
        replica_hour_price=0.25,
        storage_gb_month_price=0.0,
    )
    built = build_services(settings)
    yield built
    built.close()


def every_source(services: Services) -> MonitorSources:
    return MonitorSources(
        history=services.history,
        predictions=services.predictions,
        drift=services.drift,
        degradation=WindowTests(),
        alerts=services.alerts,
        cost=services.cost,
    )


def _service(services: Services, sources: MonitorSources) -> MonitorService:
    return MonitorService(
        services.registry, services.deployments, services.auth, Objectives(), sources, lambda: NOW
    )


def serve_hour(services: Services, version: int, start: datetime, errors: int) -> None:
    """An hour of 100 requests a minute by intents-dev, `errors` of them failing, as
    the replica supervisor records them; latencies from one distribution both days."""
    rng = np.random.default_rng(7)
    records = []
    for i in range(60):
        at = start + timedelta(minutes=i)
        minute = Minute(int(at.timestamp() // 60), requests=100, rows=100)
        for value in rng.lognormal(np.log(4.0), 0.3, 100):
            minute.latency.add(float(value))
        failed = errors // 60 + (1 if i < errors % 60 else 0)
        if failed:
            minute.errors = {"internal": failed}
        records.append(to_record("intents-dev", "intents", version, minute))
    services.history.record_minutes(records)


def log_predictions(
    services: Services, version: int, start: datetime, rows: int, age_mean: float
) -> list[str]:
    """`rows` requests of `version` logged from `start` on by the replica's log writer
    and ingested; each predicted "yes". Their request ids."""
    rng = np.random.default_rng(version)
    ages = rng.normal(age_mean, 10.0, rows)
    cities = rng.choice(CITIES, rows)
    items = [
        Entry(
            name="intents-dev",
            version=version,
            request_id=f"v{version}-{i}",
            at=start.timestamp() + i * 5.0,
            latency_ms=4.0,
            rows=1,
            inputs={"age": np.array([ages[i]]), "city": np.array([cities[i]], dtype=object)},
            outputs={"label": np.array(["yes"], dtype=object)},
        )
        for i in range(rows)
    ]
    spool = services.settings.prediction_spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    write_file(spool, LogTarget("intents-dev", "intents", 1.0, 1000), version, items)
    assert services.predictions.ingest_spool() == 1
    return [item.request_id for item in items]


def label(services: Services, request_ids: list[str], wrong: int) -> None:
    """Feedback for each logged request: the first `wrong` are "no", the rest "yes"."""
    lines = [
        json.dumps({"request_id": rid, "label": "no" if i < wrong else "yes"})
        for i, rid in enumerate(request_ids)
    ]
    assert services.predictions.feedback(ADMIN, "intents", lines).stored == len(lines)


def set_reference(services: Services, tmp_path: Path) -> None:
    """intents@2's drift reference: ages around 40, the three cities alike."""
    rng = np.random.default_rng(3)
    path = tmp_path / "reference.csv"
    rows = [
        f"{age:.3f},{city}"
        for age, city in zip(rng.normal(40.0, 10.0, 400), rng.choice(CITIES, 400), strict=True)
    ]
    path.write_text("age,city\n" + "\n".join(rows) + "\n")
    services.drift.set_reference(ADMIN, "intents", 2, path)


@pytest.fixture
def served(services: Services, stores: Stores, intents: str) -> dict[int, list[str]]:
    """Both days' traffic and logged predictions (no feedback yet), the replica's life:
    from 36 h before NOW until NOW, 12 h of the previous window and all 24 h of this one."""
    serve_hour(services, 1, BEFORE, errors=12)
    serve_hour(services, 2, TODAY, errors=300)
    stores.metadata.record_replicas("intents-dev", [(4242, True)], NOW - timedelta(hours=36))
    stores.metadata.record_replicas("intents-dev", [], NOW)
    return {
        1: log_predictions(services, 1, BEFORE, 500, age_mean=40.0),
        2: log_predictions(services, 2, TODAY, 500, age_mean=55.0),
    }


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


def fire_error_rate_rule(services: Services) -> None:
    """An error-rate rule on the model, evaluated an hour before NOW: over the 5 min
    before that, version 2 failed 5 % of its requests, so it fires."""
    scope = AlertScope(kind=ScopeKind.MODEL, target="intents")
    draft = AlertRuleDraft(
        metric="error_rate", comparison=">", threshold=0.01, scope=scope, name="error_rate"
    )
    services.alerts.add_rule(ADMIN, draft)
    assert services.alerts.evaluate_once(NOW - timedelta(hours=1)).fired == ["error_rate"]


def test_a_full_report_composes_every_source(
    services: Services, intents: str, served: dict[int, list[str]], tmp_path: Path
) -> None:
    label(services, served[1], wrong=50)  # 90 % right the day before yesterday
    label(services, served[2], wrong=100)  # 80 % right today
    set_reference(services, tmp_path)
    fire_error_rate_rule(services)
    report = _service(services, every_source(services)).report(ADMIN, intents, "24h")
    # This window's figures: version 2's hour alone (version 1's is in the previous one).
    assert report.performance is not None and report.performance.error_rate == 0.05
    assert report.performance.requests == 6000
    assert [v.version for v in report.performance.versions] == [2]
    assert len(report.performance.series) == 60
    assert {(v.metric, v.degraded) for v in report.degradation} == {
        ("latency", False),
        ("error_rate", True),
        ("accuracy", True),
    }
    assert report.drift is not None and report.drift.drifted_features == ["age"]
    assert report.accuracy is not None and report.accuracy.previous == 0.9
    assert report.accuracy.value == 0.8
    # 24 replica-hours at 0.25 over 6000 requests; the previous window had 12 hours.
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


def test_one_version_is_asked_of_every_source(
    services: Services, intents: str, served: dict[int, list[str]]
) -> None:
    monitor = _service(
        services, MonitorSources(history=services.history, degradation=WindowTests())
    )
    # This window: version 1 served nothing in it (all 6000 requests were version 2's).
    report = monitor.report(ADMIN, intents, "24h", 1)
    assert report.version == 1
    assert report.performance is not None and report.performance.requests == 0
    assert report.notes["performance"] == "no requests in the window"
    # The previous window: version 2 served nothing in it, so there is no baseline to
    # test against (version 1's 6000 requests there would be one).
    report = monitor.report(ADMIN, intents, "24h", 2)
    assert report.performance is not None and report.performance.requests == 6000
    assert report.degradation == [] and "too little traffic" in report.notes["degradation"]
    assert len(monitor.report(ADMIN, intents, "24h").degradation) == 2


def test_a_version_without_a_drift_reference_gets_the_recommendation_to_set_one(
    services: Services, intents: str
) -> None:
    report = _service(services, MonitorSources(drift=services.drift)).report(ADMIN, intents)
    assert "no drift reference for intents@2" in report.notes["drift"]
    [found] = report.recommendations
    assert found.command == "modelhub monitor reference intents@2 --data FILE"


def test_a_reference_with_no_logged_rows_is_a_note_not_a_verdict(
    services: Services, intents: str, tmp_path: Path
) -> None:
    set_reference(services, tmp_path)  # no prediction of intents@2 was logged in this test
    report = _service(services, MonitorSources(drift=services.drift)).report(ADMIN, intents)
    assert report.drift is None
    assert report.notes["drift"].startswith("drift of intents@2 not tested over 0 logged rows")


def test_a_source_that_fails_leaves_a_note_and_the_rest_of_the_report(
    services: Services, stores: Stores, intents: str, served: dict[int, list[str]], tmp_path: Path
) -> None:
    set_reference(services, tmp_path)
    # A drift service with its reference but no prediction log to read: Unavailable.
    unwired = DriftService(
        services.settings, stores.metadata, stores.artifacts, services.uploads, services.auth
    )
    sources = MonitorSources(
        drift=unwired, predictions=services.predictions, history=services.history
    )
    report = _service(services, sources).report(ADMIN, intents)
    assert report.notes["drift"] == (
        "drift: drift over live traffic needs the prediction log, absent here"
    )
    assert report.notes["accuracy"].startswith("no feedback in the window (500 predictions")
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


def test_a_models_tag_sets_its_own_latency_objective(
    services: Services, intents: str, served: dict[int, list[str]]
) -> None:
    monitor = _service(services, MonitorSources(history=services.history))
    assert "latency" not in {p.part for p in monitor.report(ADMIN, intents).health.parts}
    services.registry.update_model(intents, "dana", tags={"p99_objective_ms": "5"})
    parts = {p.part: p for p in monitor.report(ADMIN, intents).health.parts}
    assert "against objective 5.0 ms" in parts["latency"].figure
    services.registry.update_model(intents, "dana", tags={"p99_objective_ms": "fast"})
    assert "latency" not in {p.part for p in monitor.report(ADMIN, intents).health.parts}
