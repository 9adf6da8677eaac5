"""/api/v1/deployments/{name}/canary: the automated canary analysis of a deployment."""

from __future__ import annotations

from fastapi import APIRouter, Query

from modelhub.api.deps import ServicesDep
from modelhub.api.security import DeploymentReader
from modelhub.domain.canary import CanaryStatus

router = APIRouter(prefix="/api/v1", tags=["deployments"])


@router.get("/deployments/{name}/canary", response_model=CanaryStatus)
def canary_status(
    name: str,
    services: ServicesDep,
    caller: DeploymentReader,
    limit: int = Query(default=20, ge=1, le=200, description="Decisions to return."),
) -> CanaryStatus:
    """The canary in place (when automated), the latest decision with its figures and
    tests, and the earlier decisions, newest first."""
    return services.canary.status(caller, name, limit)
