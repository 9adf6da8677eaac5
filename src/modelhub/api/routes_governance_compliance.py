"""/api/v1/governance/models/{name}/versions/{version}/check and .../ethics: thin routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from modelhub.api.deps import ServicesDep
from modelhub.api.security import Approver, requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.governance import Assessment
from modelhub.domain.limits import MAX_YAML_CHARS, PositiveInt64

router = APIRouter(prefix="/api/v1/governance", tags=["governance"])

Assessor = Annotated[Caller, Depends(requires(Action.GOVERNANCE_ASSESS))]


class EthicsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_YAML_CHARS, description="The ethics review as YAML.")


@router.post("/models/{name}/versions/{version}/check", response_model=Assessment)
def compliance_check(
    name: str, version: PositiveInt64, services: ServicesDep, caller: Assessor
) -> Assessment:
    return services.compliance.check(caller, f"{name}@{version}")


@router.post("/models/{name}/versions/{version}/ethics", response_model=Assessment)
def ethics_review(
    name: str, version: PositiveInt64, body: EthicsBody, services: ServicesDep, caller: Approver
) -> Assessment:
    return services.ethics.review(caller, f"{name}@{version}", body.text)
