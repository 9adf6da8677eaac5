"""/api/v1/datasets: versioned training datasets (files arrive through /uploads)."""

from __future__ import annotations

from fastapi import APIRouter

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import DatasetBody
from modelhub.api.security import DatasetReader, DatasetRegistrar
from modelhub.domain.records import Dataset

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@router.get("", response_model=list[Dataset])
def list_datasets(
    services: ServicesDep, caller: DatasetReader, name: str | None = None
) -> list[Dataset]:
    return services.datasets.list(caller, name)


@router.post("/{name}/versions", response_model=Dataset, status_code=201)
def register_dataset(
    name: str, body: DatasetBody, services: ServicesDep, caller: DatasetRegistrar
) -> Dataset:
    return services.datasets.register_upload(
        caller, body.upload_id, name, body.format, body.description
    )


@router.get("/{name}/versions/{selector}", response_model=Dataset)
def get_dataset(name: str, selector: str, services: ServicesDep, caller: DatasetReader) -> Dataset:
    return services.datasets.get(caller, f"{name}@{selector}")
