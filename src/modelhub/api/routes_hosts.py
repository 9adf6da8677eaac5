"""/api/v1/hosts: the servers sharing this database, their capacity and health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from modelhub.api.deps import ServicesDep
from modelhub.api.security import requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.hosts import Host

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])

HostReader = Annotated[Caller, Depends(requires(Action.HOSTS_READ))]


@router.get("", response_model=list[Host])
def list_hosts(services: ServicesDep, caller: HostReader) -> list[Host]:
    return services.hosts.list_hosts(caller)
