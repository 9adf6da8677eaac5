"""/api/v1/uploads: stream files to the server before registering them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Deleted, UploadStarted
from modelhub.api.security import Registrar
from modelhub.domain.records import FileEntry

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])


@router.post("", response_model=UploadStarted, status_code=201)
def start_upload(services: ServicesDep, caller: Registrar) -> UploadStarted:
    return UploadStarted(upload_id=services.registry_for(caller).start_upload())


@router.put("/{upload_id}/files/{path:path}", response_model=FileEntry)
async def upload_file(
    upload_id: str, path: str, request: Request, services: ServicesDep, caller: Registrar
) -> FileEntry:
    staged = services.registry_for(caller).open_upload_file(upload_id, path)
    try:
        async for chunk in request.stream():
            staged.write(chunk)
    except BaseException:
        staged.abort()
        raise
    expected = request.headers.get("x-content-sha256")
    return await run_in_threadpool(staged.finish, expected)


@router.delete("/{upload_id}", response_model=Deleted)
def discard_upload(upload_id: str, services: ServicesDep, caller: Registrar) -> Deleted:
    services.registry_for(caller).discard_upload(upload_id)
    return Deleted(deleted=upload_id)
