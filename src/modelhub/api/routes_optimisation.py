"""/api/v1/models/{name}/versions/{version}/optimize: a thin route over OptimisationService.

Optimising registers a version of the model, so it takes what registering takes
(models.register, on models they own for developers). Calibration and evaluation
files arrive through /uploads first; the body names the uploads.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body
from modelhub.api.security import Registrar
from modelhub.domain.optimisation import DEFAULT_MAX_ACCURACY_DROP, OptimisationReport, Target
from modelhub.services.optimisation import OptimiseRequest

router = APIRouter(prefix="/api/v1", tags=["models"])


class OptimiseBody(Body):
    to: Target = Field(description="onnx, int8 or fp16 (fp16 needs a GPU on the server).")
    max_accuracy_drop: float = Field(
        default=DEFAULT_MAX_ACCURACY_DROP,
        description="Largest accuracy drop registered, a fraction 0-1 (0.01: one point).",
    )
    force: bool = Field(default=False, description="Register a result over the tolerance.")
    calibration_upload: str | None = Field(
        default=None, description="An upload of calibration rows: static int8 instead of dynamic."
    )
    eval_upload: str | None = Field(
        default=None,
        description="An upload of labelled rows to measure on, instead of the validation split.",
    )


@router.post("/models/{name}/versions/{version}/optimize", response_model=OptimisationReport)
async def optimise_version(
    name: str, version: str, body: OptimiseBody, services: ServicesDep, caller: Registrar
) -> OptimisationReport:
    request = OptimiseRequest(
        ref=f"{name}@{version}",
        to=body.to,
        max_accuracy_drop=body.max_accuracy_drop,
        force=body.force,
    )
    return await run_in_threadpool(
        services.optimisation.optimise_uploads,
        caller,
        request,
        body.calibration_upload,
        body.eval_upload,
    )
