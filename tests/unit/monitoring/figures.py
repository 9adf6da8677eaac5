"""Hand-written figures of one model's window, healthy unless a test says otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelhub.domain.monitor_report import (
    DeploymentState,
    Performance,
    VersionFigures,
)
from modelhub.domain.records import Lineage, ModelVersion
from modelhub.monitoring.observations import Objectives, Observations

MIB = 1024 * 1024
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def version(number: int = 3, **changes: Any) -> ModelVersion:
    fields: dict[str, Any] = {
        "name": "intents",
        "version": number,
        "type": "classification",
        "framework": "onnx",
        "size": 4 * MIB,
        "precision": "fp16",
        "digest": "0" * 64,
        "created_at": AT,
        "created_by": "dana",
        "lineage": Lineage(source_run="17", pipeline="intents-train"),
        "metrics": {"accuracy": 0.91},
    }
    fields.update(changes)
    return ModelVersion.model_validate(fields)


def performance(**changes: Any) -> Performance:
    fields: dict[str, Any] = {
        "requests": 10_000,
        "errors": 2,
        "error_rate": 0.0002,
        "rows": 10_000,
        "throughput_rps": 10_000 / 86_400,
        "p50_ms": 4.0,
        "p95_ms": 8.0,
        "p99_ms": 12.0,
        "in_flight_peak": 2,
        "versions": [
            VersionFigures(
                version=3, requests=10_000, errors=2, error_rate=0.0002, p50_ms=4.0, p99_ms=12.0
            )
        ],
    }
    fields.update(changes)
    return Performance.model_validate(fields)


def deployment(**changes: Any) -> DeploymentState:
    fields: dict[str, Any] = {
        "name": "intents",
        "environment": "production",
        "versions": [3],
        "previous_version": 2,
        "replicas": 2,
        "healthy_replicas": 2,
        "status": "running",
    }
    fields.update(changes)
    return DeploymentState.model_validate(fields)


def healthy(**changes: Any) -> Observations:
    fields: dict[str, Any] = {
        "model": "intents",
        "version": version(),
        "performance": performance(),
        "previous": performance(),
        "deployments": [deployment()],
        "objectives": Objectives(),
    }
    fields.update(changes)
    return Observations(**fields)
