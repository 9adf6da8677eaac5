"""/api/v1/governance: the policy, review requests, decisions and status (thin routes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body, NoteBody
from modelhub.api.security import Approver, requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.governance import PolicyVersion, ReviewRequest
from modelhub.domain.governance_status import GovernanceStatus
from modelhub.domain.limits import NonNegativeInt64, PositiveInt64
from modelhub.domain.records import ModelVersion

router = APIRouter(prefix="/api/v1/governance", tags=["governance"])

GovernanceReader = Annotated[Caller, Depends(requires(Action.GOVERNANCE_READ))]
GovernanceAssessor = Annotated[Caller, Depends(requires(Action.GOVERNANCE_ASSESS))]
PolicyManager = Annotated[Caller, Depends(requires(Action.GOVERNANCE_POLICY))]

MAX_POLICY_CHARS = 256 * 1024
VERSION = "/models/{name}/versions/{version}"


class PolicyBody(Body):
    text: str = Field(max_length=MAX_POLICY_CHARS, description="The policy as YAML.")


class ReviewRequestBody(Body):
    reviewers: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20, description="Who is asked to review."
    )


@router.get("/policy", response_model=PolicyVersion)
def show_policy(services: ServicesDep, caller: GovernanceReader) -> PolicyVersion:
    return services.policy.show(caller)


@router.get("/policy/history", response_model=list[PolicyVersion])
def policy_history(services: ServicesDep, caller: GovernanceReader) -> list[PolicyVersion]:
    return services.policy.history(caller)


@router.get("/policy/{policy_version}", response_model=PolicyVersion)
def show_policy_version(
    policy_version: NonNegativeInt64, services: ServicesDep, caller: GovernanceReader
) -> PolicyVersion:
    return services.policy.show(caller, policy_version)


@router.put("/policy", response_model=PolicyVersion)
def set_policy(body: PolicyBody, services: ServicesDep, caller: PolicyManager) -> PolicyVersion:
    return services.policy.set(caller, body.text)


@router.post(f"{VERSION}/request", response_model=ReviewRequest, status_code=201)
def request_review(
    name: str,
    version: PositiveInt64,
    body: ReviewRequestBody,
    services: ServicesDep,
    caller: GovernanceAssessor,
) -> ReviewRequest:
    return services.reviews.request(caller, name, version, body.reviewers)


@router.post(f"{VERSION}/approve", response_model=ModelVersion)
def approve(
    name: str, version: PositiveInt64, body: NoteBody, services: ServicesDep, caller: Approver
) -> ModelVersion:
    return services.reviews.decide(caller, name, version, True, body.note)


@router.post(f"{VERSION}/reject", response_model=ModelVersion)
def reject(
    name: str, version: PositiveInt64, body: NoteBody, services: ServicesDep, caller: Approver
) -> ModelVersion:
    return services.reviews.decide(caller, name, version, False, body.note)


@router.get(f"{VERSION}/status", response_model=GovernanceStatus)
def status(
    name: str,
    version: PositiveInt64,
    services: ServicesDep,
    caller: GovernanceReader,
    stage: Annotated[str, Query(max_length=32, description="staging or production.")] = (
        "production"
    ),
) -> GovernanceStatus:
    return services.reviews.status(caller, name, version, stage)
