"""/api/v1/models: thin routes over the registry service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from modelhub.api.deps import ActorDep, ServicesDep
from modelhub.api.schemas import (
    AliasBody,
    ArchiveBody,
    CardBody,
    Deleted,
    GcResult,
    ModelPatchBody,
    NoteBody,
    RegisterBody,
    StageBody,
    VersionList,
)
from modelhub.domain.names import parse_tags
from modelhub.domain.records import ModelVersion, RegisteredModel
from modelhub.services.registry import RegisterRequest

router = APIRouter(prefix="/api/v1", tags=["models"])


@router.get("/models", response_model=VersionList)
def search_models(
    services: ServicesDep,
    type: str | None = None,
    framework: str | None = None,
    stage: str | None = None,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI reads, never mutates
    search: str | None = None,
    name: str | None = None,
    all_versions: bool = False,
    include_archived: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> VersionList:
    page = services.registry.search(
        name=name,
        type=type,
        framework=framework,
        stage=stage,
        tags=parse_tags(tag),
        text=search,
        include_archived=include_archived,
        all_versions=all_versions,
        limit=limit,
        offset=offset,
    )
    return VersionList(items=page.items, total=page.total)


@router.get("/models/{name}", response_model=RegisteredModel)
def get_model(name: str, services: ServicesDep) -> RegisteredModel:
    return services.registry.get_model(name)


@router.patch("/models/{name}", response_model=RegisteredModel)
def update_model(
    name: str, body: ModelPatchBody, services: ServicesDep, actor: ActorDep
) -> RegisteredModel:
    return services.registry.update_model(
        name, actor, description=body.description, license=body.license, tags=body.tags
    )


@router.delete("/models/{name}", response_model=Deleted)
def delete_model(name: str, services: ServicesDep, actor: ActorDep) -> Deleted:
    return Deleted(deleted=services.registry.delete(name, actor))


@router.post("/models/{name}/archive", response_model=Deleted)
def archive_model(name: str, body: ArchiveBody, services: ServicesDep, actor: ActorDep) -> Deleted:
    return Deleted(deleted=services.registry.archive(name, actor, restore=body.restore))


@router.get("/models/{name}/versions", response_model=list[ModelVersion])
def list_versions(name: str, services: ServicesDep) -> list[ModelVersion]:
    return services.registry.versions(name)


@router.post("/models/{name}/versions", response_model=ModelVersion, status_code=201)
def register_version(
    name: str, body: RegisterBody, services: ServicesDep, actor: ActorDep
) -> ModelVersion:
    request = RegisterRequest(
        name=name,
        type=body.type,
        framework=body.framework,
        description=body.description,
        license=body.license,
        tags=body.tags,
        label=body.label,
        trust=body.trust,
        lineage=body.lineage,
        metrics=body.metrics,
        model_card=body.model_card,
    )
    return services.uploads.register(body.upload_id, request, actor)


@router.get("/models/{name}/versions/{selector}", response_model=ModelVersion)
def get_version(name: str, selector: str, services: ServicesDep) -> ModelVersion:
    return services.registry.get(f"{name}@{selector}")


@router.delete("/models/{name}/versions/{selector}", response_model=Deleted)
def delete_version(name: str, selector: str, services: ServicesDep, actor: ActorDep) -> Deleted:
    return Deleted(deleted=services.registry.delete(f"{name}@{selector}", actor))


@router.post("/models/{name}/versions/{version}/stage", response_model=ModelVersion)
def set_stage(
    name: str, version: int, body: StageBody, services: ServicesDep, actor: ActorDep
) -> ModelVersion:
    return services.registry.set_stage(name, version, body.stage, actor)


@router.post("/models/{name}/versions/{version}/approve", response_model=ModelVersion)
def approve(
    name: str, version: int, body: NoteBody, services: ServicesDep, actor: ActorDep
) -> ModelVersion:
    return services.registry.approve(name, version, body.note, actor)


@router.post("/models/{name}/versions/{version}/reject", response_model=ModelVersion)
def reject(
    name: str, version: int, body: NoteBody, services: ServicesDep, actor: ActorDep
) -> ModelVersion:
    return services.registry.reject(name, version, body.note, actor)


@router.post("/models/{name}/versions/{selector}/archive", response_model=Deleted)
def archive_version(
    name: str, selector: str, body: ArchiveBody, services: ServicesDep, actor: ActorDep
) -> Deleted:
    return Deleted(
        deleted=services.registry.archive(f"{name}@{selector}", actor, restore=body.restore)
    )


@router.put("/models/{name}/versions/{selector}/card", response_model=ModelVersion)
def set_card(
    name: str, selector: str, body: CardBody, services: ServicesDep, actor: ActorDep
) -> ModelVersion:
    return services.registry.set_model_card(f"{name}@{selector}", body.text, actor)


@router.put("/models/{name}/aliases/{alias}", response_model=ModelVersion)
def set_alias(
    name: str, alias: str, body: AliasBody, services: ServicesDep, actor: ActorDep
) -> ModelVersion:
    return services.registry.set_alias(name, alias, body.version, actor)


@router.delete("/models/{name}/aliases/{alias}", response_model=Deleted)
def remove_alias(name: str, alias: str, services: ServicesDep, actor: ActorDep) -> Deleted:
    services.registry.remove_alias(name, alias, actor)
    return Deleted(deleted=f"{name}@{alias}")


@router.get("/models/{name}/versions/{selector}/files/{path:path}")
def download_file(name: str, selector: str, path: str, services: ServicesDep) -> StreamingResponse:
    version, entry = services.registry.file_entry(f"{name}@{selector}", path)
    return StreamingResponse(
        services.registry.read_file(entry.digest),
        media_type="application/octet-stream",
        headers={
            "content-length": str(entry.size),
            "x-content-sha256": entry.digest,
            "x-modelhub-version": str(version.version),
        },
    )


@router.post("/gc", response_model=GcResult, tags=["maintenance"])
def collect_garbage(
    services: ServicesDep, grace_seconds: int | None = Query(default=None, ge=0)
) -> GcResult:
    report = services.registry.gc(grace_seconds)
    return GcResult(
        blobs_deleted=report.blobs_deleted,
        bytes_freed=report.bytes_freed,
        blobs_kept_young=report.blobs_kept_young,
    )
