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


def bias_figures() -> dict[str, Any]:
    """The figures a real bias assessment records (Fairlearn through our engine) over a
    small set: group f selected less often than m, group x too small to judge."""
    import numpy as np
    import pandas as pd

    from modelhub.domain.governance_policy import BiasThresholds
    from modelhub.governance.bias import assess

    rng = np.random.default_rng(0)
    sex = np.array(["f"] * 120 + ["m"] * 130 + ["x"] * 5)
    truth = rng.integers(0, 2, len(sex)).astype(str)
    pred = truth.copy()
    pred[:40] = "0"  # f: fewer selected
    result = assess(truth, pred, pd.DataFrame({"sex": sex}), ["0", "1"], BiasThresholds())
    return result.figures | {"data": "eval.csv", "label": "label"}


def explanation_figures() -> dict[str, Any]:
    """The shape services/governance/explain.py records for a permutation explanation."""
    return {
        "method": "permutation",
        "score": "drop in accuracy (baseline 0.9100)",
        "baseline": None,
        "rows": 200,
        "ranking": [
            {"feature": "income", "importance": 0.21, "std": 0.02},
            {"feature": "age", "importance": 0.05, "std": 0.01},
        ],
        "mean_relative_delta": None,
        "max_relative_delta": None,
        "thresholds": {"max_convergence_delta": 0.05, "min_rows": 50},
        "n_repeats": 5,
        "local": {
            "row": 3,
            "predicted": "1",
            "attributions": [
                {"feature": "age", "value": 41.0, "attribution": 0.01},
                {"feature": "income", "value": 52000.0, "attribution": 0.3},
            ],
            "relative_delta": None,
        },
    }
