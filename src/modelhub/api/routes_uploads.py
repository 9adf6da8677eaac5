"""/api/v1/uploads: stream files to the server before registering them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Deleted, UploadStarted
from modelhub.domain.records import FileEntry

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])


@router.post("", response_model=UploadStarted, status_code=201)
def start_upload(services: ServicesDep) -> UploadStarted:
    return UploadStarted(upload_id=services.uploads.start())


@router.put("/{upload_id}/files/{path:path}", response_model=FileEntry)
async def upload_file(
    upload_id: str, path: str, request: Request, services: ServicesDep
) -> FileEntry:
    staged = services.uploads.open_file(upload_id, path)
    try:
        async for chunk in request.stream():
            staged.write(chunk)
    except BaseException:
        staged.abort()
        raise
    expected = request.headers.get("x-content-sha256")
    return await run_in_threadpool(staged.finish, expected)


@router.delete("/{upload_id}", response_model=Deleted)
def discard_upload(upload_id: str, services: ServicesDep) -> Deleted:
    services.uploads.discard(upload_id)
    return Deleted(deleted=upload_id)
