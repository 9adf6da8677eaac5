"""/api/v1/models: thin routes over the registry, as the caller may use it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import (
    AliasBody,
    ArchiveBody,
    CardBody,
    Deleted,
    GcResult,
    ImportBody,
    ModelPatchBody,
    NoteBody,
    RegisterBody,
    RegisterFields,
    StageBody,
    VersionList,
)
from modelhub.api.security import (
    Approver,
    Collector,
    Deleter,
    Reader,
    Registrar,
    Stager,
    Updater,
)
from modelhub.domain.limits import NonNegativeInt64, PositiveInt64
from modelhub.domain.names import parse_tags
from modelhub.domain.queries import VersionQuery
from modelhub.domain.records import ModelVersion, RegisteredModel
from modelhub.errors import IntegrityError, InvalidInput
from modelhub.services.registry import RegisterRequest

router = APIRouter(prefix="/api/v1", tags=["models"])
logger = logging.getLogger("modelhub.api")


@router.get("/models", response_model=VersionList)
def search_models(
    services: ServicesDep,
    caller: Reader,
    type: str | None = None,
    framework: str | None = None,
    stage: str | None = None,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI reads, never mutates
    search: str | None = None,
    name: str | None = None,
    all_versions: bool = False,
    include_archived: bool = False,
    limit: PositiveInt64 = 100,
    offset: NonNegativeInt64 = 0,
) -> VersionList:
    query = VersionQuery(
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
    page = services.registry_for(caller).search(query)
    return VersionList(items=page.items, total=page.total)


@router.get("/models/{name}", response_model=RegisteredModel)
def get_model(name: str, services: ServicesDep, caller: Reader) -> RegisteredModel:
    return services.registry_for(caller).get_model(name)


@router.patch("/models/{name}", response_model=RegisteredModel)
def update_model(
    name: str, body: ModelPatchBody, services: ServicesDep, caller: Updater
) -> RegisteredModel:
    return services.registry_for(caller).update_model(
        name, description=body.description, license=body.license, tags=body.tags
    )


@router.delete("/models/{name}", response_model=Deleted)
def delete_model(name: str, services: ServicesDep, caller: Deleter) -> Deleted:
    return Deleted(deleted=services.registry_for(caller).delete(name))


@router.post("/models/{name}/archive", response_model=Deleted)
def archive_model(name: str, body: ArchiveBody, services: ServicesDep, caller: Updater) -> Deleted:
    return Deleted(deleted=services.registry_for(caller).archive(name, restore=body.restore))


@router.get("/models/{name}/versions", response_model=list[ModelVersion])
def list_versions(name: str, services: ServicesDep, caller: Reader) -> list[ModelVersion]:
    return services.registry_for(caller).versions(name)


@router.post("/models/{name}/versions", response_model=ModelVersion, status_code=201)
def register_version(
    name: str, body: RegisterBody, services: ServicesDep, caller: Registrar
) -> ModelVersion:
    return services.registry_for(caller).register_upload(
        body.upload_id, register_request(name, body)
    )


@router.post("/models/import", response_model=ModelVersion, status_code=201)
def import_model(body: ImportBody, services: ServicesDep, caller: Registrar) -> ModelVersion:
    """Register a file or folder already on the server's disk (copied, never moved); the
    path, symbolic links resolved, must lie inside one of the server's import folders."""
    return services.registry_for(caller).import_path(register_request(body.name, body), body.path)


REGISTER_HEADER = "x-modelhub-register"


@router.post("/models/{name}/files/{filename}", response_model=ModelVersion, status_code=201)
async def register_file(
    name: str,
    filename: str,
    request: Request,
    services: ServicesDep,
    caller: Registrar,
    x_modelhub_register: Annotated[
        str, Header(description="The registration's fields as JSON (RegisterFields).")
    ] = "{}",
    x_content_sha256: Annotated[
        str | None, Header(description="sha256 of the body; a mismatch registers nothing.")
    ] = None,
) -> ModelVersion:
    """Register one file as a new version in one request: the body is the file.

    Everything but the file is checked before the body is read; the file is staged,
    hashed as it arrives, checked against x-content-sha256 and registered. Refused
    or not, nothing stays staged. Folders and resumable uploads use /uploads.
    """
    try:
        fields = RegisterFields.model_validate_json(x_modelhub_register)
    except ValidationError as exc:
        raise InvalidInput(
            f"header {REGISTER_HEADER} is not valid: {exc.errors()[0]['msg']}",
            {"field": REGISTER_HEADER},
        ) from exc
    registry = services.registry_for(caller)
    registration = await run_in_threadpool(
        registry.open_registration, register_request(name, fields), filename
    )
    try:
        async for chunk in request.stream():
            registration.write(chunk)
    except BaseException:
        registration.abort()
        raise
    return await run_in_threadpool(registration.finish, x_content_sha256)


def register_request(name: str, fields: RegisterFields) -> RegisterRequest:
    return RegisterRequest(
        name=name,
        type=fields.type,
        framework=fields.framework,
        description=fields.description,
        license=fields.license,
        tags=fields.tags,
        label=fields.label,
        trust=fields.trust,
        lineage=fields.lineage,
        metrics=fields.metrics,
        model_card=fields.model_card,
        private_inputs=tuple(fields.private_inputs),
    )


@router.get("/models/{name}/versions/{selector}", response_model=ModelVersion)
def get_version(name: str, selector: str, services: ServicesDep, caller: Reader) -> ModelVersion:
    return services.registry_for(caller).get(f"{name}@{selector}")


@router.delete("/models/{name}/versions/{selector}", response_model=Deleted)
def delete_version(name: str, selector: str, services: ServicesDep, caller: Deleter) -> Deleted:
    return Deleted(deleted=services.registry_for(caller).delete(f"{name}@{selector}"))


@router.post("/models/{name}/versions/{version}/stage", response_model=ModelVersion)
def set_stage(
    name: str, version: PositiveInt64, body: StageBody, services: ServicesDep, caller: Stager
) -> ModelVersion:
    return services.registry_for(caller).set_stage(name, version, body.stage, force=body.force)


@router.post("/models/{name}/versions/{version}/approve", response_model=ModelVersion)
def approve(
    name: str, version: PositiveInt64, body: NoteBody, services: ServicesDep, caller: Approver
) -> ModelVersion:
    return services.registry_for(caller).approve(name, version, body.note)


@router.post("/models/{name}/versions/{version}/reject", response_model=ModelVersion)
def reject(
    name: str, version: PositiveInt64, body: NoteBody, services: ServicesDep, caller: Approver
) -> ModelVersion:
    return services.registry_for(caller).reject(name, version, body.note)


@router.post("/models/{name}/versions/{selector}/archive", response_model=Deleted)
def archive_version(
    name: str, selector: str, body: ArchiveBody, services: ServicesDep, caller: Updater
) -> Deleted:
    ref = f"{name}@{selector}"
    return Deleted(deleted=services.registry_for(caller).archive(ref, restore=body.restore))


@router.put("/models/{name}/versions/{selector}/card", response_model=ModelVersion)
def set_card(
    name: str, selector: str, body: CardBody, services: ServicesDep, caller: Updater
) -> ModelVersion:
    return services.registry_for(caller).set_model_card(f"{name}@{selector}", body.text)


@router.put("/models/{name}/aliases/{alias}", response_model=ModelVersion)
def set_alias(
    name: str, alias: str, body: AliasBody, services: ServicesDep, caller: Updater
) -> ModelVersion:
    return services.registry_for(caller).set_alias(name, alias, body.version)


@router.delete("/models/{name}/aliases/{alias}", response_model=Deleted)
def remove_alias(name: str, alias: str, services: ServicesDep, caller: Updater) -> Deleted:
    services.registry_for(caller).remove_alias(name, alias)
    return Deleted(deleted=f"{name}@{alias}")


@router.get("/models/{name}/versions/{selector}/files/{path:path}")
def download_file(
    name: str, selector: str, path: str, services: ServicesDep, caller: Reader
) -> StreamingResponse:
    registry = services.registry_for(caller)
    version, entry = registry.file_entry(f"{name}@{selector}", path)
    return StreamingResponse(
        _logging_damage(registry.read_file(entry.digest), f"{name}@{version.version}/{path}"),
        media_type="application/octet-stream",
        headers={
            "content-length": str(entry.size),
            "x-content-sha256": entry.digest,
            "x-modelhub-version": str(version.version),
        },
    )


def _logging_damage(chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
    """The response has begun, so a damaged blob can only cut it short: say why in the log."""
    try:
        yield from chunks
    except IntegrityError as exc:
        logger.error("stopped sending %s: %s", what, exc.message)
        raise


@router.post("/gc", response_model=GcResult, tags=["maintenance"])
def collect_garbage(
    services: ServicesDep,
    caller: Collector,
    grace_seconds: Annotated[NonNegativeInt64 | None, Query()] = None,
) -> GcResult:
    report = services.registry_for(caller).gc(grace_seconds)
    return GcResult(
        blobs_deleted=report.blobs_deleted,
        bytes_freed=report.bytes_freed,
        blobs_kept_young=report.blobs_kept_young,
    )
