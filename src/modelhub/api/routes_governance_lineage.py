"""A version's lineage graph, generated model card and auditor's report: thin routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from modelhub.api.deps import ServicesDep
from modelhub.api.security import requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.limits import PositiveInt64
from modelhub.domain.lineage import LineageGraph, VersionDocument

router = APIRouter(prefix="/api/v1", tags=["governance"])

GovernanceReader = Annotated[Caller, Depends(requires(Action.GOVERNANCE_READ))]


@router.get("/models/{name}/versions/{version}/lineage", response_model=LineageGraph)
def lineage(
    name: str, version: PositiveInt64, services: ServicesDep, caller: GovernanceReader
) -> LineageGraph:
    return services.lineage.graph_for(caller, f"{name}@{version}")


@router.get("/models/{name}/versions/{version}/card", response_model=VersionDocument)
def model_card(
    name: str, version: PositiveInt64, services: ServicesDep, caller: GovernanceReader
) -> VersionDocument:
    """The card generated now from the registry and the reviews (README.md text);
    `PUT .../card` stores a card with the version."""
    return services.cards.card_for(caller, f"{name}@{version}")


@router.get("/governance/models/{name}/versions/{version}/report", response_model=VersionDocument)
def report(
    name: str, version: PositiveInt64, services: ServicesDep, caller: GovernanceReader
) -> VersionDocument:
    return services.reports.report_for(caller, f"{name}@{version}")
