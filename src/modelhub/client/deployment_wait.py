"""Waiting for a deployment to settle: shared by the HTTP and the local client."""

from __future__ import annotations

import time
from collections.abc import Callable

from modelhub.domain.deployments import Autoscale, Deployment, DeploymentStatus
from modelhub.errors import InvalidInput, Unavailable

POLL_SECONDS = 0.1  # a deployment from a warm spare settles in well under a second
SETTLED = frozenset({DeploymentStatus.RUNNING, DeploymentStatus.FAILED, DeploymentStatus.STOPPED})


def is_settled(deployment: Deployment, canary_settles: bool = True) -> bool:
    """Whether the background work on a deployment has ended, for now.

    Running, failed and stopped are settled; so is a canary in place (updating with
    two traffic shares) unless `canary_settles` is False (after a promote or a
    rollback, which end it); so is any deployment that reports an error.
    """
    if deployment.status in SETTLED or deployment.error:
        return True
    return (
        canary_settles
        and deployment.status is DeploymentStatus.UPDATING
        and len(deployment.traffic) == 2
    )


def poll_until_settled(
    get: Callable[[], Deployment],
    timeout: float,
    canary_settles: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Deployment:
    """Call `get` until what it returns is settled; Unavailable after `timeout` seconds."""
    deadline = clock() + timeout
    while True:
        deployment = get()
        if is_settled(deployment, canary_settles):
            return deployment
        if clock() >= deadline:
            raise Unavailable(
                f"deployment {deployment.name} is still {deployment.status.value} after "
                f"{timeout:g} s; it goes on: modelhub deployments show {deployment.name}",
                {"deployment": deployment.name, "status": deployment.status.value},
            )
        sleep(POLL_SECONDS)


def as_autoscale(autoscale: tuple[int, int] | Autoscale | None) -> Autoscale | None:
    """Autoscale bounds from a (min, max) pair, as the client methods accept them."""
    if autoscale is None or isinstance(autoscale, Autoscale):
        return autoscale
    try:
        low, high = autoscale
        return Autoscale(min_replicas=low, max_replicas=high)
    except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        raise InvalidInput(
            f"autoscale wants (min, max) replicas of at least 1, not {autoscale!r}",
            {"field": "autoscale"},
        ) from None
