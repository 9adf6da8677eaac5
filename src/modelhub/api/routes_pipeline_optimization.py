"""/api/v1/pipelines/{name}/optimizations: profile a pipeline, propose changes, accept them."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body
from modelhub.api.security import PipelineWriter, RunStarter, TrainingReader
from modelhub.domain.limits import INT64_MAX, MAX_INT_DIGITS
from modelhub.domain.pipeline_optimization import (
    DEFAULT_BUDGET_STEPS,
    DEFAULT_TOLERANCE,
    PipelineOptimization,
)
from modelhub.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["training"])


class OptimizeBody(Body):
    budget_steps: int = Field(
        default=DEFAULT_BUDGET_STEPS, description="Steps of the profiling run (5-10000)."
    )
    tolerance: float = Field(
        default=DEFAULT_TOLERANCE,
        description="How far the changed run's validation metric may fall behind (0-1).",
    )


@router.post(
    "/pipelines/{name}/optimizations", response_model=PipelineOptimization, status_code=202
)
def optimize_pipeline(
    name: str, body: OptimizeBody, services: ServicesDep, caller: RunStarter
) -> PipelineOptimization:
    return services.pipeline_optimizations.optimize(caller, name, body.budget_steps, body.tolerance)


@router.get("/pipelines/{name}/optimizations", response_model=list[PipelineOptimization])
def list_optimizations(
    name: str, services: ServicesDep, caller: TrainingReader
) -> list[PipelineOptimization]:
    return services.pipeline_optimizations.list_optimizations(caller, name)


@router.get("/pipelines/{name}/optimizations/{selector}", response_model=PipelineOptimization)
def get_optimization(
    name: str, selector: str, services: ServicesDep, caller: TrainingReader
) -> PipelineOptimization:
    return services.pipeline_optimizations.get(caller, name, optimization_id(selector))


@router.post(
    "/pipelines/{name}/optimizations/{selector}/accept", response_model=PipelineOptimization
)
def accept_optimization(
    name: str, selector: str, services: ServicesDep, caller: PipelineWriter
) -> PipelineOptimization:
    return services.pipeline_optimizations.accept(caller, name, optimization_id(selector))


def optimization_id(selector: str) -> int | None:
    """None for `latest`, else the optimisation's id."""
    if selector == "latest":
        return None
    digits = selector.isascii() and selector.isdigit() and len(selector) <= MAX_INT_DIGITS
    if digits and 0 < int(selector) <= INT64_MAX:
        return int(selector)
    raise InvalidInput(
        f"optimization {selector[:40]!r} is not an id or latest", {"field": "optimization"}
    )
