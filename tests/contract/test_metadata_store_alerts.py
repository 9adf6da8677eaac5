"""The alerts part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from modelhub.domain.alerts import AlertRuleDraft, Comparison, Scope, ScopeKind, Severity
from modelhub.errors import Conflict, IllegalTransition, NotFound
from modelhub.stores.metadata.base import AuditQuery
from modelhub.stores.metadata.engine import make_engine
from modelhub.stores.metadata.migrate import upgrade
from modelhub.stores.metadata.sql import SqlMetadataStore
from modelhub.stores.metadata.tables import alerts as alerts_table

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def actions(store: SqlMetadataStore) -> list[str]:
    """The alert engine's audit actions, oldest first."""
    found = store.list_audit(AuditQuery(limit=1000))  # newest first
    return [e.action for e in reversed(found) if e.action.startswith("alerts.")]


def draft(name: str | None = None, target: str = "m") -> AlertRuleDraft:
    return AlertRuleDraft(
        metric="p99_latency_ms",
        comparison=Comparison.ABOVE,
        threshold=50,
        for_seconds=300,
        severity=Severity.CRITICAL,
        scope=Scope(kind=ScopeKind.MODEL, target=target),
        name=name,
        labels={"team": "personas"},
        webhooks=["http://127.0.0.1:9/hook"],
    )


def test_a_rule_round_trips_and_its_name_is_unique(store: SqlMetadataStore) -> None:
    rule = store.add_alert_rule(draft(), "alice")
    assert rule.name == "p99_latency_ms_above_50"
    assert (rule.threshold, rule.for_seconds, rule.severity) == (50, 300, Severity.CRITICAL)
    assert rule.scope.subject == "model:m" and rule.labels == {"team": "personas"}
    assert store.get_alert_rule(rule.id or 0) == rule
    assert store.list_alert_rules() == [rule]
    before = actions(store)
    with pytest.raises(Conflict, match="exists"):
        store.add_alert_rule(draft(), "bob")
    assert store.list_alert_rules() == [rule] and actions(store) == before
    assert before == ["alerts.rule_add"]


def test_pending_fires_once_per_incident_and_resolves(store: SqlMetadataStore) -> None:
    pending = store.pend_alert("model:m", "slow", "warning", "p99 60", at=T0)
    assert pending.state == "pending" and pending.pending_since == T0
    assert store.pend_alert("model:m", "slow", "warning", "again").id == pending.id
    assert store.alerts_owed() == [] and actions(store) == []  # pending is not an alert yet
    fired = store.fire_alert("model:m", "slow", "warning", "p99 61", at=T0 + timedelta(minutes=5))
    assert (fired.id, fired.state, fired.message) == (pending.id, "firing", "p99 61")
    assert store.fire_alert("model:m", "slow", "warning", "dup").id == fired.id
    assert actions(store) == ["alerts.fire"]  # the duplicate wrote nothing
    assert store.open_alert("model:m", "slow") == fired
    assert store.resolve_alerts("model:m", "slow", at=T0 + timedelta(minutes=9)) == 1
    resolved = store.get_alert(fired.id)
    assert (resolved.state, resolved.resolved_at) == ("resolved", T0 + timedelta(minutes=9))
    assert store.open_alert("model:m", "slow") is None
    again = store.fire_alert("model:m", "slow", "warning", "a new incident")
    assert again.id != fired.id
    assert actions(store) == ["alerts.fire", "alerts.resolve", "alerts.fire"]


def test_a_pending_alert_is_dropped_not_resolved(store: SqlMetadataStore) -> None:
    pending = store.pend_alert("model:m", "slow", "warning", "p99 60")
    store.cancel_pending(pending.id)
    assert store.list_alerts() == []
    store.pend_alert("model:m", "slow", "warning", "p99 60")
    assert store.resolve_alerts("model:m") == 0 and store.list_alerts() == []
    assert actions(store) == []


def test_acknowledging_keeps_it_firing(store: SqlMetadataStore) -> None:
    fired = store.fire_alert("run:3", "stalled", "warning", "no progress")
    acked = store.acknowledge_alert(fired.id, "alice")
    assert (acked.state, acked.acknowledged_by) == ("firing", "alice")
    assert acked.acknowledged_at is not None
    assert store.acknowledge_alert(fired.id, "bob").acknowledged_by == "alice"
    assert store.list_alerts(firing_only=True) == [store.get_alert(fired.id)]
    store.resolve_alerts("run:3")
    with pytest.raises(IllegalTransition, match="resolved"):
        store.acknowledge_alert(fired.id, "bob")
    with pytest.raises(NotFound):
        store.acknowledge_alert(fired.id + 100, "bob")
    assert actions(store).count("alerts.ack") == 2


def test_the_outbox_owes_each_state_once(store: SqlMetadataStore) -> None:
    fired = store.fire_alert(
        "model:m", "slow", "warning", "p99 60", labels={"team": "a"}, webhooks=["http://h/x"]
    )
    assert [(a.id, hooks) for a, hooks in store.alerts_owed()] == [(fired.id, ["http://h/x"])]
    assert store.claim_notification(fired.id, "firing")
    assert not store.claim_notification(fired.id, "firing")  # another server got there first
    assert store.alerts_owed() == []
    store.resolve_alerts("model:m")
    owed = store.alerts_owed()
    assert [(a.id, a.state, a.labels) for a, _ in owed] == [(fired.id, "resolved", {"team": "a"})]
    assert store.claim_notification(fired.id, "resolved")
    assert store.alerts_owed() == []


def test_clearing_is_remembered_on_a_firing_alert(store: SqlMetadataStore) -> None:
    fired = store.fire_alert("model:m", "slow", "warning", "p99 60")
    store.set_clearing(fired.id, T0)
    assert store.get_alert(fired.id).clearing_since == T0
    store.set_clearing(fired.id, None)
    assert store.get_alert(fired.id).clearing_since is None


def test_removing_a_rule_resolves_its_alerts(store: SqlMetadataStore) -> None:
    rule = store.add_alert_rule(draft("slow"), "alice")
    fired = store.fire_alert("model:m", "slow", "critical", "p99 60", rule_id=rule.id)
    store.pend_alert("model:m", "other", "critical", "p99 60", rule_id=rule.id)
    removed = store.remove_alert_rule(rule.id or 0, "alice")
    assert removed == rule and store.list_alert_rules() == []
    assert [(a.id, a.state) for a in store.list_alerts()] == [(fired.id, "resolved")]
    with pytest.raises(NotFound, match="does not exist"):
        store.remove_alert_rule(rule.id or 0, "alice")
    assert actions(store) == ["alerts.rule_add", "alerts.fire", "alerts.rule_remove"]


def test_deliveries_are_recorded_in_order(store: SqlMetadataStore) -> None:
    fired = store.fire_alert("model:m", "slow", "warning", "p99 60")
    store.record_delivery(fired.id, "http://h/x", "firing", 1, "retry", error="refused")
    store.record_delivery(fired.id, "http://h/x", "firing", 2, "ok", status_code=200)
    found = store.list_deliveries(fired.id)
    assert [(d.attempt, d.outcome, d.status_code, d.error) for d in found] == [
        (1, "retry", None, "refused"),
        (2, "ok", 200, None),
    ]
    assert store.list_deliveries(fired.id + 1) == []


def test_list_alerts_keeps_the_newest_within_the_limit(store: SqlMetadataStore) -> None:
    ids = [store.fire_alert(f"run:{i}", "stalled", "warning", "x").id for i in range(3)]
    assert [a.id for a in store.list_alerts(limit=2)] == ids[1:]
    assert [a.id for a in store.list_alerts("run:0")] == ids[:1]


def test_an_upgrade_does_not_notify_alerts_fired_before_it(metadata_url: str) -> None:
    engine = make_engine(metadata_url)
    upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(
            # Only the columns revision 0007 had.
            insert(alerts_table).values(
                subject="run:1",
                rule="stalled",
                severity="warning",
                message="old",
                state="firing",
                fired_at=T0,
            )
        )
    engine.dispose()
    store = SqlMetadataStore(metadata_url)  # upgrades to the head
    try:
        [old] = store.list_alerts()
        assert (old.subject, old.state, old.labels) == ("run:1", "firing", {})
        assert store.alerts_owed() == []
        assert store.resolve_alerts("run:1") == 1
        assert [a.id for a, _ in store.alerts_owed()] == [old.id]
    finally:
        store.close()
