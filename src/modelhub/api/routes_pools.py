"""/api/v1/pools: the shared model pools (replicas, loaded models, memory, hit rate)."""

from __future__ import annotations

from fastapi import APIRouter

from modelhub.api.deps import ServicesDep
from modelhub.api.security import DeploymentReader
from modelhub.domain.pools import Pool

router = APIRouter(prefix="/api/v1", tags=["pools"])


@router.get("/pools", response_model=list[Pool])
def list_pools(services: ServicesDep, caller: DeploymentReader) -> list[Pool]:
    return services.deployments.pools(caller)


@router.get("/pools/{name}", response_model=Pool)
def show_pool(name: str, services: ServicesDep, caller: DeploymentReader) -> Pool:
    return services.deployments.pool(caller, name)
