"""The alert engine over real stores: lifecycle with an injected clock, bad input,
permissions, and webhooks to a real receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.alerts import (
    AlertRuleDraft,
    Comparison,
    Delivery,
    Scope,
    ScopeKind,
    Severity,
)
from modelhub.domain.auth import Caller, Role
from modelhub.domain.monitoring import Window
from modelhub.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from modelhub.monitoring.alert_payload import SIGNATURE_HEADER, verify
from modelhub.monitoring.rollup import Minute, to_record
from modelhub.services import Services, build_services
from modelhub.services.monitoring.alerts import AlertService
from modelhub.services.monitoring.history import HistoryService
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from modelhub.stores.metadata.base import AuditQuery
from tests.stores import Stores, stores_of
from tests.unit.inspect.builders import save_numpy_safetensors
from tests.unit.services.alert_receiver import closed_port_url, receiver

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
SECRET = "test-secret"
ADMIN = Caller(name="alice", role=Role.ADMIN)
PLATFORM = Scope(kind=ScopeKind.PLATFORM)


@dataclass
class Gauge:
    """A figure the test sets, read through a registered metric."""

    value: float | None = None

    def read(self, scope: Scope, window: Window) -> float | None:
        return self.value


@dataclass
class Engine:
    alerts: AlertService
    services: Services
    stores: Stores
    gauge: Gauge
    waits: list[float]

    def audit(self) -> list[str]:
        found = self.stores.metadata.list_audit(AuditQuery(limit=1000))
        return [e.action for e in reversed(found) if e.action.startswith("alerts.")]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    settings = Settings(
        home=tmp_path / "home",
        alerts_resolve_after_seconds=60,
        alerts_webhook_secret=SECRET,
        alerts_webhook_attempts=3,
        alerts_webhook_backoff_seconds=0.5,
        alerts_webhook_timeout_seconds=2,
    )
    services = build_services(settings)
    waits: list[float] = []
    gauge = Gauge()
    with stores_of(services) as stores:
        alerts = AlertService(settings, stores.metadata, services.auth, sleep=waits.append)
        alerts.register_metric("test_gauge", {"platform"}, gauge.read)
        yield Engine(alerts, services, stores, gauge, waits)
        alerts.close()
    services.close()


def gauge_rule(engine: Engine, for_seconds: float = 300, webhooks: list[str] | None = None) -> None:
    engine.alerts.add_rule(
        ADMIN,
        AlertRuleDraft(
            metric="test_gauge",
            comparison=Comparison.ABOVE,
            threshold=10,
            for_seconds=for_seconds,
            severity=Severity.CRITICAL,
            scope=PLATFORM,
            name="gauge_high",
            webhooks=webhooks or [],
        ),
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_pending_fires_only_after_for_then_resolves(engine: Engine) -> None:
    gauge_rule(engine, for_seconds=300)
    engine.gauge.value = 20
    assert engine.alerts.evaluate_once(at(0)).pending == ["gauge_high"]
    assert engine.alerts.evaluate_once(at(299)).fired == []
    [alert] = engine.alerts.list_alerts(ADMIN)
    assert alert.state == "pending" and engine.alerts.list_alerts(ADMIN, firing_only=True) == []
    assert engine.alerts.evaluate_once(at(300)).fired == ["gauge_high"]
    [alert] = engine.alerts.list_alerts(ADMIN, firing_only=True)
    assert (alert.fired_at, alert.pending_since) == (at(300), at(0))
    assert alert.message == "test_gauge 20 > 10 on platform"
    engine.gauge.value = 5  # false from now: resolves after the hold (max(for, 60 s))
    assert engine.alerts.evaluate_once(at(330)).resolved == []
    assert engine.alerts.evaluate_once(at(629)).resolved == []
    assert engine.alerts.evaluate_once(at(630)).resolved == ["gauge_high"]
    assert engine.alerts.get_alert(ADMIN, alert.id).resolved_at == at(630)
    assert engine.audit() == ["alerts.rule_add", "alerts.fire", "alerts.resolve"]


def test_a_spike_shorter_than_for_never_fires(engine: Engine) -> None:
    gauge_rule(engine, for_seconds=300)
    engine.gauge.value = 20
    engine.alerts.evaluate_once(at(0))
    engine.gauge.value = None  # no data is not true
    engine.alerts.evaluate_once(at(60))
    assert engine.alerts.list_alerts(ADMIN) == []
    assert engine.alerts.dispatch_once() == 0
    assert engine.audit() == ["alerts.rule_add"]


def test_a_flapping_condition_fires_once_per_incident(engine: Engine) -> None:
    """200 evaluations 30 s apart (seed 11): true, with dips of one or two evaluations
    (false for less than the 60 s hold) 30 % of the time, inside one incident; then
    false for 10 minutes; then true again."""
    gauge_rule(engine, for_seconds=60)
    rng = random.Random(11)
    dips, run = 0, 0
    for step in range(200):
        dip = step > 2 and run < 2 and rng.random() < 0.3
        run = run + 1 if dip else 0
        dips += dip
        engine.gauge.value = 5 if dip else 20
        engine.alerts.evaluate_once(at(30 * step))
    assert dips > 40  # the dips happened, and each would have ended a naive incident
    assert [a.state for a in engine.alerts.list_alerts(ADMIN)] == ["firing"]
    engine.gauge.value = 5
    for step in range(200, 220):
        engine.alerts.evaluate_once(at(30 * step))
    engine.gauge.value = 20
    for step in range(220, 224):
        engine.alerts.evaluate_once(at(30 * step))
    assert [a.state for a in engine.alerts.list_alerts(ADMIN)] == ["resolved", "firing"]
    assert engine.audit().count("alerts.fire") == 2


def test_acknowledging_records_who_and_keeps_firing(engine: Engine) -> None:
    gauge_rule(engine, for_seconds=0)
    engine.gauge.value = 20
    engine.alerts.evaluate_once(at(0))
    [alert] = engine.alerts.list_alerts(ADMIN)
    viewer = Caller(name="val", role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        engine.alerts.acknowledge(viewer, alert.id)
    developer = Caller(name="dev", role=Role.DEVELOPER)
    acked = engine.alerts.acknowledge(developer, alert.id)
    assert (acked.state, acked.acknowledged_by) == ("firing", "dev")
    engine.alerts.evaluate_once(at(30))
    assert engine.alerts.get_alert(viewer, alert.id).state == "firing"
    assert engine.audit()[-1] == "alerts.ack"


def test_bad_rules_are_refused_and_nothing_is_written(engine: Engine) -> None:
    def draft(**changes: object) -> AlertRuleDraft:
        base = {
            "metric": "p99_latency_ms",
            "comparison": "above",
            "threshold": 50,
            "scope": {"kind": "model", "target": "nope"},
        }
        return AlertRuleDraft.model_validate(base | changes)

    with pytest.raises(NotFound, match="nope"):
        engine.alerts.add_rule(ADMIN, draft())
    with pytest.raises(NotFound):
        engine.alerts.add_rule(ADMIN, draft(scope={"kind": "deployment", "target": "gone"}))
    with pytest.raises(InvalidInput, match="unknown metric 'p98_latency_ms'"):
        engine.alerts.add_rule(ADMIN, draft(metric="p98_latency_ms"))
    with pytest.raises(InvalidInput, match="applies to"):
        engine.alerts.add_rule(ADMIN, draft(scope={"kind": "run", "target": "1"}))
    with pytest.raises(InvalidInput, match="not a number"):
        engine.alerts.add_rule(
            ADMIN, draft(metric="run_loss", scope={"kind": "run", "target": "x"})
        )
    for url in ("ftp://example.com/x", "file:///etc/passwd", "127.0.0.1:80", "http://u:p@h/"):
        with pytest.raises(InvalidInput, match="webhook"):
            engine.alerts.add_rule(ADMIN, draft(webhooks=[url], scope={"kind": "platform"}))
    with pytest.raises(Conflict, match="built-in"):
        engine.alerts.add_rule(
            ADMIN, draft(metric="queued_runs", scope={"kind": "platform"}, name="stalled")
        )
    with pytest.raises(PermissionDenied):
        engine.alerts.add_rule(Caller(name="dev", role=Role.DEVELOPER), draft())
    assert [r.name for r in engine.alerts.list_rules(ADMIN)] == [
        "nan_loss",
        "diverging_loss",
        "stalled",
    ]
    assert engine.audit() == []


def test_the_built_in_training_rules_are_listed(engine: Engine) -> None:
    rules = {r.name: r for r in engine.alerts.list_rules(ADMIN)}
    assert all(r.builtin and r.id is None for r in rules.values())
    assert rules["stalled"].threshold == engine.services.settings.train_stall_seconds
    assert rules["nan_loss"].severity is Severity.CRITICAL


def test_other_engines_fire_once_and_resolve(engine: Engine) -> None:
    first = engine.alerts.fire("deployment:d", "canary_rollback", "critical", "5 % errors", {})
    again = engine.alerts.fire("deployment:d", "canary_rollback", "critical", "still", {})
    assert again.id == first.id
    engine.alerts.resolve("deployment:d", "canary_rollback")
    assert engine.alerts.get_alert(ADMIN, first.id).state == "resolved"
    assert engine.audit() == ["alerts.fire", "alerts.resolve"]


def served(
    history: HistoryService, model: str, at: datetime, latency_ms: float, requests: int = 100
) -> None:
    """`requests` answered in `latency_ms` each by deployment d of `model`, in the
    minute starting at `at`, recorded as the replica supervisor records them."""
    minute = Minute(int(at.timestamp() // 60), requests=requests, rows=requests)
    for _ in range(requests):
        minute.latency.add(latency_ms)
    history.record_minutes([to_record("d", model, 1, minute)])


def test_serving_rules_read_the_performance_source(engine: Engine, tmp_path: Path) -> None:
    weights = {"w": np.ones((4, 3), np.float32)}
    model = save_numpy_safetensors(tmp_path / "src" / "model.safetensors", weights)
    engine.services.registry.register(
        RegisterRequest(name="persona", type="custom"), model, "alice"
    )
    history = engine.services.history
    settings = engine.services.settings
    window = timedelta(seconds=settings.alerts_window_seconds)
    served(history, "persona", at(-120), 10.0)  # fast, inside the window
    served(history, "persona", at(-60) - window, 500.0)  # slow, just before the window
    served(history, "other", at(-60), 500.0)  # slow, but another model's
    alerts = AlertService(settings, engine.stores.metadata, engine.services.auth, history)
    scope = Scope(kind=ScopeKind.MODEL, target="persona")
    slow = AlertRuleDraft(metric="p99_latency_ms", comparison=">", threshold=50, scope=scope)
    alerts.add_rule(ADMIN, slow)
    assert alerts.evaluate_once(at(0)).fired == []
    served(history, "persona", at(0), 80.0)  # the minute from T0 on is slow
    assert alerts.evaluate_once(at(30)).fired == ["p99_latency_ms_above_50"]
    alerts.close()


def test_webhooks_get_signed_alertmanager_payloads(engine: Engine) -> None:
    with receiver() as hook:
        gauge_rule(engine, for_seconds=0, webhooks=[hook.url])
        engine.gauge.value = 20
        engine.alerts.evaluate_once(at(0))
        assert engine.alerts.dispatch_once() == 1
        assert engine.alerts.dispatch_once() == 0  # told once
        engine.gauge.value = 1
        engine.alerts.evaluate_once(at(30))
        engine.alerts.evaluate_once(at(90))
        engine.alerts.dispatch_once()
    assert len(hook.received) == 2
    firing, resolved = (json.loads(r.body) for r in hook.received)
    for sent in hook.received:
        expected = hmac.new(SECRET.encode(), sent.body, hashlib.sha256).hexdigest()
        assert sent.headers[SIGNATURE_HEADER] == f"sha256={expected}"
        assert verify(sent.body, sent.headers[SIGNATURE_HEADER], SECRET)
        assert not verify(sent.body + b" ", sent.headers[SIGNATURE_HEADER], SECRET)
    assert firing["version"] == "4" and firing["status"] == "firing"
    assert set(firing) >= {
        "groupKey", "receiver", "groupLabels", "commonLabels", "commonAnnotations",
        "externalURL", "alerts",
    }  # fmt: skip
    [alert] = firing["alerts"]
    assert alert["labels"] == {
        "alertname": "gauge_high",
        "severity": "critical",
        "subject": "platform",
    }
    assert alert["startsAt"] == "2026-12-07T01:00:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert len(alert["fingerprint"]) == 16
    assert alert["generatorURL"].endswith(
        f"/api/v1/alerts/{engine.alerts.list_alerts(ADMIN)[0].id}"
    )
    [ended] = resolved["alerts"]
    assert resolved["status"] == "resolved" and ended["endsAt"] == "2026-12-07T01:01:30Z"
    assert ended["fingerprint"] == alert["fingerprint"]
    assert engine.waits == []


def test_a_webhook_is_retried_with_back_off(engine: Engine) -> None:
    with receiver() as hook:
        hook.answers = [503, 503]
        gauge_rule(engine, for_seconds=0, webhooks=[hook.url])
        engine.gauge.value = 20
        engine.alerts.evaluate_once(at(0))
        engine.alerts.dispatch_once()
    [alert] = engine.alerts.list_alerts(ADMIN)
    tries = engine.alerts.deliveries(ADMIN, alert.id)
    assert [(d.attempt, d.outcome, d.status_code) for d in tries] == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "ok", 200),
    ]
    assert engine.waits == [0.5, 1.0] and len(hook.received) == 3
    assert [a.rule for a in engine.alerts.list_alerts(ADMIN)] == ["gauge_high"]


def test_an_unreachable_webhook_fails_and_alerts_once(engine: Engine) -> None:
    dead = closed_port_url()
    gauge_rule(engine, for_seconds=0, webhooks=[dead])
    engine.gauge.value = 20
    engine.alerts.evaluate_once(at(0))
    engine.alerts.fire("run:9", "other", "warning", "x", {})
    engine.alerts.dispatch_once()
    alerts = engine.alerts.list_alerts(ADMIN)
    failed = [a for a in alerts if a.rule == "webhook_failed"]
    assert len(failed) == 1 and failed[0].subject == f"webhook:{dead}"
    rule_alert = next(a for a in alerts if a.rule == "gauge_high")
    tries = engine.alerts.deliveries(ADMIN, rule_alert.id)
    assert [d.outcome for d in tries] == ["retry", "retry", "failed"]
    assert all(d.status_code is None and d.error for d in tries)
    engine.gauge.value = 1  # a second notification to the same dead URL: no second alert
    engine.alerts.evaluate_once(at(30))
    engine.alerts.evaluate_once(at(400))
    engine.alerts.dispatch_once()
    assert len([a for a in engine.alerts.list_alerts(ADMIN) if a.rule == "webhook_failed"]) == 1
    assert engine.waits == [0.5, 1.0] * 2


def test_the_threads_evaluate_notify_and_stop_mid_back_off(tmp_path: Path) -> None:
    """The server's threads: a rule fires with no one calling evaluate_once, its dead
    webhook is retried, and stop() ends a 30 s back-off at once."""
    settings = Settings(
        home=tmp_path / "threads",
        alerts_evaluation_seconds=0.05,
        alerts_dispatch_seconds=0.05,
        alerts_webhook_attempts=5,
        alerts_webhook_backoff_seconds=30,
    )
    services = build_services(settings)
    try:
        alerts = services.alerts
        alerts.register_metric("always", {"platform"}, lambda scope, window: 1.0)
        rule = AlertRuleDraft(
            metric="always",
            comparison=Comparison.ABOVE,
            threshold=0,
            scope=PLATFORM,
            webhooks=[closed_port_url()],
        )
        alerts.add_rule(ADMIN, rule)
        alerts.start()
        deadline = time.monotonic() + 30
        tried: list[Delivery] = []
        while not tried and time.monotonic() < deadline:
            fired = alerts.list_alerts(ADMIN, firing_only=True)
            tried = alerts.deliveries(ADMIN, fired[0].id) if fired else []
            time.sleep(0.02)
        assert [d.outcome for d in tried] == ["retry"]
        started = time.monotonic()
        alerts.stop()
        assert time.monotonic() - started < 5  # not the 30 s back-off
        assert len(alerts.deliveries(ADMIN, tried[0].alert_id)) == 1
    finally:
        services.close()


def test_noise_below_the_threshold_never_alerts(engine: Engine) -> None:
    """False alarms measured: 500 evaluations of N(5, 2) noise (seed 5) against > 10 for
    1 minute fire nothing; the same noise shifted to N(15, 2) fires once."""
    gauge_rule(engine, for_seconds=60)
    rng = random.Random(5)
    for step in range(500):
        engine.gauge.value = rng.gauss(5, 2)
        engine.alerts.evaluate_once(at(30 * step))
    opened = [a for a in engine.alerts.list_alerts(ADMIN) if a.state != "pending"]
    assert opened == []  # 0 false alarms in 500 evaluations
    for step in range(500, 600):
        engine.gauge.value = rng.gauss(15, 2)
        engine.alerts.evaluate_once(at(30 * step))
    assert [a.state for a in engine.alerts.list_alerts(ADMIN)] == ["firing"]


def test_built_in_training_alerts_reach_the_platform_webhooks(engine: Engine) -> None:
    """The scheduler fires its rules in the store, as it always did; the engine's
    outbox sends them to MODELHUB_ALERTS_WEBHOOKS like any other."""
    with receiver() as hook:
        settings = engine.services.settings.model_copy(update={"alerts_webhooks": [hook.url]})
        alerts = AlertService(settings, engine.stores.metadata, engine.services.auth)
        try:
            engine.stores.metadata.fire_alert("run:4", "nan_loss", "critical", "loss became nan")
            assert alerts.dispatch_once() == 1
        finally:
            alerts.close()
    [sent] = hook.received
    labels = json.loads(sent.body)["alerts"][0]["labels"]
    assert labels == {
        "alertname": "nan_loss",
        "severity": "critical",
        "subject": "run:4",
        "run": "4",
    }
    assert engine.audit() == ["alerts.fire"]
