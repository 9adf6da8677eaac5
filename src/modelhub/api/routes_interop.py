"""/api/v1/models/imports and .../export: thin routes over InteropService.

An import's files arrive through /uploads first (as `models register` sends a
folder); the body names the upload and the format. An export is built on the
server and sent back as a tar stream that the client unpacks into its folder.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body
from modelhub.api.security import Reader, Registrar
from modelhub.domain.records import ModelVersion
from modelhub.services.interop import ImportRequest

router = APIRouter(prefix="/api/v1", tags=["models"])


class ImportModelBody(Body):
    upload_id: str
    from_format: str = Field(description="mlflow, huggingface or onnx")
    name: str | None = Field(default=None, max_length=100)
    source_name: str | None = Field(
        default=None, max_length=255, description="The imported folder's name: the default name."
    )
    type: str | None = None
    description: str = ""
    license: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    label: str | None = None
    trust: bool = False


@router.post("/models/imports", response_model=ModelVersion, status_code=201)
def import_model(body: ImportModelBody, services: ServicesDep, caller: Registrar) -> ModelVersion:
    """Register an uploaded MLflow model directory, Hugging Face folder or ONNX file,
    keeping what its layout says (signature, requirements, license, card)."""
    request = ImportRequest(**body.model_dump(exclude={"upload_id"}))
    return services.interop.import_upload(caller, body.upload_id, request)


@router.get("/models/{name}/versions/{selector}/export")
def export_model(
    name: str,
    selector: str,
    services: ServicesDep,
    caller: Reader,
    to: Annotated[str, Query(description="mlflow, huggingface or onnx")],
) -> StreamingResponse:
    """The version in another platform's layout, as an uncompressed tar stream."""
    archive = services.interop.export_archive(caller, f"{name}@{selector}", to)
    result = archive.result
    filename = quote(f"{result.name}-{result.version}-{result.format}.tar")
    return StreamingResponse(
        archive.chunks,
        media_type="application/x-tar",
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{filename}",
            "x-modelhub-version": str(result.version),
            "x-modelhub-format": result.format,
        },
    )
