"""/api/v1/monitoring/models/{name}: the monitor report of one model, as JSON."""

from __future__ import annotations

from fastapi import APIRouter, Query

from modelhub.api.deps import ServicesDep
from modelhub.api.security import Reader
from modelhub.domain.monitor_report import MonitorReport

router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])


@router.get("/models/{name}", response_model=MonitorReport)
def model_report(
    name: str,
    services: ServicesDep,
    caller: Reader,
    since: str = Query(default="24h", max_length=24, description="The window: 30m, 24h, 7d ..."),
    version: int | None = Query(default=None, ge=1, description="One version; default all."),
) -> MonitorReport:
    return services.monitor.report(caller, name, since, version)
