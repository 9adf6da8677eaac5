"""/api/v1/overview: the platform at a glance, as the dashboard's stat cards show it."""

from __future__ import annotations

from fastapi import APIRouter

from modelhub.api.deps import ServicesDep
from modelhub.api.security import Reader
from modelhub.domain.overview import Overview

router = APIRouter(prefix="/api/v1", tags=["overview"])


@router.get("/overview", response_model=Overview)
def overview(services: ServicesDep, caller: Reader) -> Overview:
    return services.overview.figures(caller)
