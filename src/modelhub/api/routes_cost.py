"""/api/v1/cost and /api/v1/monitoring/platform: thin routes over the cost service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from modelhub.api.deps import ServicesDep
from modelhub.api.security import DeploymentReader, Reader, TrainingReader, requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.cost import (
    Budget,
    BudgetRequest,
    BudgetStatus,
    CostReport,
    CostSummary,
    PlatformFigures,
)
from modelhub.domain.limits import PositiveInt64

router = APIRouter(prefix="/api/v1", tags=["cost"])

CostManager = Annotated[Caller, Depends(requires(Action.COST_MANAGE))]
Since = Annotated[str, Query(description="How far back: 30d, 24h, 90m, 45s.", max_length=24)]


@router.get("/cost", response_model=CostReport)
def cost_report(
    services: ServicesDep,
    caller: Reader,
    since: Since = "30d",
    by: Annotated[
        str, Query(description="model, deployment, run, user or tag:KEY.", max_length=140)
    ] = "model",
) -> CostReport:
    return services.cost.report(caller, since, by)


@router.get("/cost/runs/{run_id}", response_model=CostSummary)
def run_cost(run_id: PositiveInt64, services: ServicesDep, caller: TrainingReader) -> CostSummary:
    return services.cost.run_cost_for(caller, run_id)


@router.get("/cost/deployments/{name}", response_model=CostSummary)
def deployment_cost(
    name: str, services: ServicesDep, caller: DeploymentReader, since: Since = "30d"
) -> CostSummary:
    return services.cost.deployment_cost_for(caller, name, since)


@router.get("/cost/budgets", response_model=list[BudgetStatus])
def list_budgets(services: ServicesDep, caller: Reader) -> list[BudgetStatus]:
    return services.cost.list_budgets(caller)


@router.post("/cost/budgets", response_model=Budget, status_code=201)
def set_budget(body: BudgetRequest, services: ServicesDep, caller: CostManager) -> Budget:
    return services.cost.set_budget(caller, body)


@router.delete("/cost/budgets/{budget_id}", response_model=Budget)
def remove_budget(budget_id: PositiveInt64, services: ServicesDep, caller: CostManager) -> Budget:
    return services.cost.remove_budget(caller, budget_id)


@router.get("/monitoring/platform", response_model=PlatformFigures)
def platform_figures(
    services: ServicesDep, caller: TrainingReader, since: Since = "24h"
) -> PlatformFigures:
    return services.cost.platform_figures_for(caller, since)
