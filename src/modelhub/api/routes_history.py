"""/api/v1/models/{name}/performance: a model's serving history, summarised."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from modelhub.api.deps import ServicesDep
from modelhub.api.security import Reader
from modelhub.monitoring.payloads import summary_to_json

router = APIRouter(prefix="/api/v1", tags=["monitoring"])


@router.get("/models/{name}/performance")
def performance(
    name: str,
    services: ServicesDep,
    caller: Reader,
    since: str = Query(default="24h", description="Window length back from now: 30m, 24h, 7d."),
    version: int | None = Query(default=None, description="Only this version."),
) -> dict[str, Any]:
    return summary_to_json(services.history.performance_for(caller, name, since, version))
