"""/api/v1/studies: thin routes over the tuning service (`modelhub tune`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from modelhub.api.deps import ServicesDep
from modelhub.api.security import RunStarter, TrainingReader
from modelhub.domain.tuning import Study, TuneRequest

router = APIRouter(prefix="/api/v1", tags=["tuning"])


@router.post("/studies", response_model=Study, status_code=201)
def tune(body: TuneRequest, services: ServicesDep, caller: RunStarter) -> Study:
    return services.tuning.tune(caller, body)


@router.get("/studies/{name}", response_model=Study)
def study_status(name: str, services: ServicesDep, caller: TrainingReader) -> Study:
    return services.tuning.status(caller, name)


@router.get("/studies/{name}/chart", response_class=Response)
def study_chart(name: str, services: ServicesDep, caller: TrainingReader) -> Response:
    return Response(services.tuning.chart(caller, name), media_type="image/svg+xml")


@router.post("/studies/{name}/resume", response_model=Study)
def resume_study(name: str, services: ServicesDep, caller: RunStarter) -> Study:
    return services.tuning.resume(caller, name)
