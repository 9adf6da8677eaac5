"""Records the lineage lane's engine tests build: versions, models, deployments, assessments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelhub.domain.deployments import (
    Deployment,
    DeploymentStatus,
    Environment,
    TrafficShare,
)
from modelhub.domain.enums import Framework, ModelType
from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.domain.records import Lineage, ModelVersion, RegisteredModel

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def version(name: str, number: int, **lineage: Any) -> ModelVersion:
    extra = lineage.pop("extra", {})
    return ModelVersion(
        name=name,
        version=number,
        type=ModelType.CLASSIFICATION,
        framework=Framework.SAFETENSORS,
        size=1234,
        digest=f"{number:064x}",
        lineage=Lineage(**lineage),
        created_at=AT,
        created_by="carol",
        **extra,
    )


def model(name: str, **fields: Any) -> RegisteredModel:
    return RegisteredModel(
        name=name,
        type=ModelType.CLASSIFICATION,
        owner="carol",
        created_at=AT,
        updated_at=AT,
        **fields,
    )


def deployment(name: str, model_name: str, shares: dict[int, int]) -> Deployment:
    return Deployment(
        name=name,
        model=model_name,
        environment=Environment.STAGING,
        traffic=[TrafficShare(version=v, percent=p) for v, p in shares.items()],
        replicas=1,
        status=DeploymentStatus.RUNNING,
        created_by="carol",
        created_at=AT,
        updated_at=AT,
    )


def assessment(kind: ReviewKind, figures: dict[str, Any], passed: bool = True) -> Assessment:
    return Assessment(
        id=7,
        model="intents",
        version=2,
        kind=kind,
        passed=passed,
        policy_version=3,
        summary=f"{kind.value} summary",
        figures=figures,
        actor="dana",
        created_at=AT,
    )
