"""When a deployment counts as settled, and waiting for it with a timeout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelhub.client.deployment_wait import as_autoscale, is_settled, poll_until_settled
from modelhub.domain.deployments import (
    Autoscale,
    Deployment,
    DeploymentStatus,
    Environment,
    TrafficShare,
)
from modelhub.errors import InvalidInput, Unavailable

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def deployment(
    status: str, shares: tuple[int, ...] = (100,), error: str | None = None
) -> Deployment:
    return Deployment(
        name="d",
        model="m",
        environment=Environment.STAGING,
        traffic=[TrafficShare(version=i + 1, percent=p) for i, p in enumerate(shares)],
        replicas=1,
        status=DeploymentStatus(status),
        error=error,
        created_by="me",
        created_at=NOW,
        updated_at=NOW,
    )


def test_what_counts_as_settled() -> None:
    for status in ("running", "failed", "stopped"):
        assert is_settled(deployment(status))
    assert not is_settled(deployment("deploying"))
    assert not is_settled(deployment("updating"))  # still loading the new version
    canary = deployment("updating", (90, 10))
    assert is_settled(canary)
    assert not is_settled(canary, canary_settles=False)  # a promote or rollback ends it
    assert is_settled(deployment("updating", error="scaling failed: boom"))


def test_polls_until_settled() -> None:
    seen = iter([deployment("deploying"), deployment("deploying"), deployment("running")])
    sleeps: list[float] = []
    found = poll_until_settled(lambda: next(seen), 10, sleep=sleeps.append)
    assert found.status is DeploymentStatus.RUNNING and len(sleeps) == 2


def test_times_out_with_a_clear_error() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(Unavailable, match=r"deployment d is still deploying after 2 s") as caught:
        poll_until_settled(lambda: deployment("deploying"), 2, sleep=sleep, clock=lambda: now[0])
    assert caught.value.details == {"deployment": "d", "status": "deploying"}
    assert now[0] == pytest.approx(2.0)


def test_autoscale_from_a_pair() -> None:
    assert as_autoscale((1, 4)) == Autoscale(min_replicas=1, max_replicas=4)
    bounds = Autoscale(min_replicas=2, max_replicas=3, target_in_flight=8)
    assert as_autoscale(bounds) is bounds and as_autoscale(None) is None
    for bad in ((0, 4), (1,), "1:4"):
        with pytest.raises(InvalidInput, match="autoscale wants"):
            as_autoscale(bad)  # type: ignore[arg-type]
