"""The deployments part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelhub.domain.deployments import (
    LATENCY_BOUNDS_MS,
    Autoscale,
    Deployment,
    DeploymentStatus,
    Environment,
    LoadBalancing,
    ReplicaHealth,
    TrafficShare,
)
from modelhub.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from modelhub.stores.metadata.base import AuditDraft, AuditQuery, UsageDelta
from modelhub.stores.metadata.sql import SqlMetadataStore

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BUCKETS = len(LATENCY_BOUNDS_MS) + 1


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def audit(action: str, target: str = "web") -> AuditDraft:
    return AuditDraft("alice", action, target, {})


def deployment(name: str = "web", **fields: Any) -> Deployment:
    values: dict[str, Any] = {
        "name": name,
        "model": "m",
        "environment": Environment.STAGING,
        "traffic": [TrafficShare(version=1, percent=100)],
        "replicas": 1,
        "status": DeploymentStatus.DEPLOYING,
        "created_by": "alice",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Deployment(**{**values, **fields})


def deploy(store: SqlMetadataStore, name: str = "web", **fields: Any) -> Deployment:
    return store.create_deployment(deployment(name, **fields), audit("deployments.create", name))


def buckets(**counts: int) -> tuple[int, ...]:
    """Latency buckets with the given counts at bucket indexes named b0, b1, ..."""
    row = [0] * BUCKETS
    for key, count in counts.items():
        row[int(key[1:])] = count
    return tuple(row)


def audit_count(store: SqlMetadataStore) -> int:
    return len(store.list_audit(AuditQuery(limit=1000)))


def test_a_deployment_round_trips_every_field(store: SqlMetadataStore) -> None:
    full = deployment(
        traffic=[TrafficShare(version=1, percent=90), TrafficShare(version=2, percent=10)],
        previous_version=1,
        replicas=2,
        autoscale=Autoscale(min_replicas=1, max_replicas=4, target_in_flight=2.5),
        load_balancing=LoadBalancing.LEAST_OUTSTANDING,
        resources={"cpus": 1.5, "memory": 2**31, "devices": ["cpu"]},
        error="an earlier failure",
        endpoint="http://127.0.0.1:9001",
        health=[
            ReplicaHealth(pid=11, port=9001, live=True, ready=True),
            ReplicaHealth(pid=12, port=9002, live=True, restarts=2, error="oom"),
        ],
        approval_override=True,
    )
    created = store.create_deployment(full, audit("deployments.create"))
    assert created == full
    assert store.get_deployment("web") == full
    assert created.primary_version == 1 and created.versions == [1, 2]


def test_no_autoscale_stays_none(store: SqlMetadataStore) -> None:
    assert deploy(store).autoscale is None
    assert store.get_deployment("web").autoscale is None


def test_lists_by_name_and_filters(store: SqlMetadataStore) -> None:
    deploy(store, "c", environment=Environment.PRODUCTION)
    deploy(store, "a")
    deploy(store, "b", model="other")
    deploy(store, "d", status=DeploymentStatus.STOPPED)
    deploy(store, "e", status=DeploymentStatus.FAILED)
    assert [d.name for d in store.list_deployments()] == ["a", "b", "c", "e"]
    assert [d.name for d in store.list_deployments(include_stopped=True)] == [
        "a",
        "b",
        "c",
        "d",
        "e",
    ]
    assert [d.name for d in store.list_deployments(Environment.PRODUCTION)] == ["c"]
    assert [d.name for d in store.list_deployments(model="other")] == ["b"]
    assert store.list_deployments(Environment.DEVELOPMENT) == []


def test_a_live_name_cannot_be_taken(store: SqlMetadataStore) -> None:
    deploy(store)
    before = audit_count(store)
    with pytest.raises(Conflict, match="'web' is deploying") as caught:
        deploy(store, model="other")
    assert caught.value.details == {"deployment": "web", "status": "deploying"}
    assert store.get_deployment("web").model == "m"
    assert audit_count(store) == before


@pytest.mark.parametrize("ended", [DeploymentStatus.STOPPED, DeploymentStatus.FAILED])
def test_an_ended_deployment_is_replaced_and_its_usage_forgotten(
    store: SqlMetadataStore, ended: DeploymentStatus
) -> None:
    deploy(store)
    store.add_usage([UsageDelta("web", 1, requests=5)])
    store.update_deployment("web", {"status": ended}, audit=audit("deployments.stop"))
    again = deploy(store, model="other", traffic=[TrafficShare(version=3, percent=100)])
    assert (again.model, again.versions, again.status) == ("other", [3], DeploymentStatus.DEPLOYING)
    assert store.deployment_usage("web") == []
    event = store.list_audit(AuditQuery(action="deployments.create", limit=1))[0]
    assert event.details == {"replaced": ended.value}


def test_updates_check_the_move_and_serialize_records(store: SqlMetadataStore) -> None:
    deploy(store)
    health = [ReplicaHealth(pid=7, port=9100, live=True, ready=True)]
    running = store.update_deployment(
        "web",
        {"status": DeploymentStatus.RUNNING, "health": health, "endpoint": "http://h:1"},
        expected_status=DeploymentStatus.DEPLOYING,
    )
    assert (running.status, running.health, running.endpoint) == (
        DeploymentStatus.RUNNING,
        health,
        "http://h:1",
    )
    assert running.updated_at > NOW and running.created_at == NOW
    split = [TrafficShare(version=1, percent=50), {"version": 2, "percent": 50}]
    scaled = store.update_deployment(
        "web",
        {
            "traffic": split,
            "autoscale": Autoscale(min_replicas=2, max_replicas=3),
            "replicas": 2,
            "status": "updating",
        },
        audit=audit("deployments.update"),
    )
    assert store.get_deployment("web") == scaled
    assert scaled.traffic == [
        TrafficShare(version=1, percent=50),
        TrafficShare(version=2, percent=50),
    ]
    assert scaled.autoscale == Autoscale(min_replicas=2, max_replicas=3)
    assert store.update_deployment("web", {"autoscale": None}).autoscale is None


def test_an_illegal_move_changes_nothing(store: SqlMetadataStore) -> None:
    deploy(store)
    store.update_deployment("web", {"status": DeploymentStatus.STOPPED})
    with pytest.raises(IllegalTransition, match="web is stopped; it cannot become running"):
        store.update_deployment("web", {"status": DeploymentStatus.RUNNING, "replicas": 3})
    with pytest.raises(IllegalTransition):  # the current status again is not a move
        store.update_deployment("web", {"status": DeploymentStatus.STOPPED})
    stored = store.get_deployment("web")
    assert (stored.status, stored.replicas) == (DeploymentStatus.STOPPED, 1)


def test_expected_status_is_a_compare_and_set(store: SqlMetadataStore) -> None:
    deploy(store)
    store.update_deployment(
        "web",
        {"status": DeploymentStatus.FAILED, "error": "load failed"},
        DeploymentStatus.DEPLOYING,
    )
    with pytest.raises(Conflict, match="web is failed, not deploying") as caught:
        store.update_deployment(
            "web", {"status": DeploymentStatus.RUNNING}, DeploymentStatus.DEPLOYING
        )
    assert caught.value.details == {"deployment": "web", "status": "failed"}
    # Without a status change the expected status still guards the write.
    with pytest.raises(Conflict):
        store.update_deployment("web", {"replicas": 4}, DeploymentStatus.RUNNING)
    assert store.get_deployment("web").replicas == 1


def test_bad_changes_are_invalid_input(store: SqlMetadataStore) -> None:
    deploy(store)
    with pytest.raises(InvalidInput, match="cannot change colour, name of deployment web"):
        store.update_deployment("web", {"name": "x", "colour": "red"})
    with pytest.raises(InvalidInput, match="replicas"):
        store.update_deployment("web", {"replicas": -1})
    with pytest.raises(InvalidInput, match="status"):
        store.update_deployment("web", {"status": "sleeping"})
    assert store.get_deployment("web").replicas == 1


def test_audited_changes_are_logged_and_telemetry_is_not(store: SqlMetadataStore) -> None:
    deploy(store)
    assert [e.action for e in store.list_audit(AuditQuery(target="web"))] == ["deployments.create"]
    store.update_deployment("web", {"status": DeploymentStatus.RUNNING})
    store.update_deployment("web", {"health": [ReplicaHealth(pid=1, live=True)]})
    store.add_usage([UsageDelta("web", 1, requests=1)])
    assert audit_count(store) == 1
    store.update_deployment(
        "web",
        {"replicas": 3},
        DeploymentStatus.RUNNING,
        AuditDraft("bob", "deployments.scale", "web", {"replicas": 3}),
    )
    latest = store.list_audit(AuditQuery(limit=1))[0]
    assert (latest.actor, latest.action, latest.target, latest.details) == (
        "bob",
        "deployments.scale",
        "web",
        {"replicas": 3},
    )
    # A refused audited change records nothing.
    with pytest.raises(IllegalTransition):
        store.update_deployment(
            "web", {"status": DeploymentStatus.RUNNING}, audit=audit("deployments.update")
        )
    assert audit_count(store) == 2
    assert store.verify_audit().intact


def test_usage_accumulates_per_version(store: SqlMetadataStore) -> None:
    deploy(store)
    early, late = NOW, NOW + timedelta(minutes=5)
    store.add_usage(
        [
            UsageDelta("web", 2, 1, 0, 1, 4.0, buckets(b3=1), 1, early),
            UsageDelta("web", 1, 10, 1, 40, 25.5, buckets(b0=8, b14=2), 3, late),
        ]
    )
    store.add_usage(
        [
            UsageDelta("web", 1, 5, 2, 5, 10.0, buckets(b0=1, b14=4), 2, early),
            UsageDelta("web", 1, 1, 0, 1, 0.5, buckets(b1=1), 1, None),
            UsageDelta("web", 2, errors=1),  # no latency samples: buckets may be empty
        ]
    )
    one, two = store.deployment_usage("web")
    assert (one.version, one.requests, one.errors, one.rows) == (1, 16, 3, 46)
    assert one.latency_ms_sum == pytest.approx(36.0)
    assert one.latency_buckets == list(buckets(b0=9, b1=1, b14=6))
    assert (one.active_callers, one.last_used) == (1, late)
    assert (two.version, two.requests, two.errors, two.latency_buckets) == (
        2,
        1,
        1,
        list(buckets(b3=1)),
    )
    assert (two.active_callers, two.last_used) == (0, early)


def test_usage_is_all_or_nothing(store: SqlMetadataStore) -> None:
    deploy(store)
    with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
        store.add_usage([UsageDelta("web", 1, requests=1), UsageDelta("ghost", 1, requests=1)])
    with pytest.raises(InvalidInput, match="3 latency buckets, not 15"):
        store.add_usage(
            [UsageDelta("web", 1, requests=1), UsageDelta("web", 1, latency_buckets=(1, 2, 3))]
        )
    assert store.deployment_usage("web") == []
    store.add_usage([])


def test_unknown_deployments_are_not_found(store: SqlMetadataStore) -> None:
    calls = [
        lambda: store.get_deployment("ghost"),
        lambda: store.update_deployment("ghost", {"replicas": 2}),
        lambda: store.update_deployment("ghost", {"replicas": 2}, audit=audit("x", "ghost")),
        lambda: store.deployment_usage("ghost"),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="deployment 'ghost' does not exist") as caught:
            call()
        assert caught.value.details == {"deployment": "ghost"}
    assert audit_count(store) == 0
