"""When a deployment's replicas started, read back from the replica spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelhub.domain.auth import Caller, Role
from modelhub.domain.deployments import (
    Deployment,
    DeploymentStatus,
    Environment,
    ReplicaHealth,
    TrafficShare,
)
from modelhub.services import Services
from modelhub.stores.metadata.base import AuditDraft
from tests.stores import stores_of

VIEWER = Caller(name="vera", role=Role.VIEWER)


def test_a_replica_started_when_its_first_unbroken_span_did(services: Services) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    t1, t2 = t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)
    with stores_of(services) as stores:
        metadata = stores.metadata
        metadata.create_deployment(
            Deployment(
                name="spans",
                model="m",
                environment=Environment.DEVELOPMENT,
                traffic=[TrafficShare(version=1, percent=100)],
                replicas=3,
                status=DeploymentStatus.RUNNING,
                created_by="someone",
                created_at=t0 - timedelta(minutes=1),
                updated_at=t0,
            ),
            AuditDraft("someone", "deployments.create", "spans", {}),
        )
        metadata.record_replicas("spans", [(10, False), (12, True)], t0)
        metadata.record_replicas("spans", [(10, True), (11, False)], t1)  # 12 went away
        metadata.record_replicas("spans", [(10, True), (11, True)], t2)
        health = [ReplicaHealth(pid=pid, live=True) for pid in (10, 11, 12, 99)]
        deployment = metadata.update_deployment("spans", {"health": health})
    starts = services.deployments.replica_starts(VIEWER, deployment)
    # 12's only span ended; 99 was never recorded: neither has a start to show.
    assert starts == {10: t0, 11: t1}
    no_health = deployment.model_copy(update={"health": []})
    assert services.deployments.replica_starts(VIEWER, no_health) == {}
