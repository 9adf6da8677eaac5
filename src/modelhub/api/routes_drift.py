"""/api/v1/models/{name}/versions/{version}/reference and /drift: thin routes over DriftService.

Data files (a reference, or live data to compare) arrive through /uploads first,
as datasets do; the body names the upload.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body
from modelhub.api.security import Reader, Updater
from modelhub.domain.drift import DriftReference, DriftReport
from modelhub.domain.limits import PositiveInt64

router = APIRouter(prefix="/api/v1", tags=["drift"])


class DataFileBody(Body):
    upload_id: str
    format: str | None = Field(
        default=None, description="csv, jsonl or parquet; default from the file's name"
    )


@router.put("/models/{name}/versions/{version}/reference", response_model=DriftReference)
def set_reference(
    name: str, version: PositiveInt64, body: DataFileBody, services: ServicesDep, caller: Updater
) -> DriftReference:
    return services.drift.set_reference_upload(caller, name, version, body.upload_id, body.format)


@router.get("/models/{name}/versions/{version}/reference", response_model=DriftReference)
def get_reference(
    name: str, version: PositiveInt64, services: ServicesDep, caller: Reader
) -> DriftReference:
    return services.drift.reference(caller, name, version)


@router.get("/models/{name}/versions/{version}/drift", response_model=DriftReport)
def drift(
    name: str, version: PositiveInt64, services: ServicesDep, caller: Reader, since: str = "24h"
) -> DriftReport:
    return services.drift.drift(caller, name, version, since)


@router.post("/models/{name}/versions/{version}/drift", response_model=DriftReport)
def compare(
    name: str, version: PositiveInt64, body: DataFileBody, services: ServicesDep, caller: Reader
) -> DriftReport:
    return services.drift.compare_upload(caller, name, version, body.upload_id, body.format)
