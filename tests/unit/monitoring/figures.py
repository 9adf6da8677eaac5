"""Hand-written figures of one model's window, healthy unless a test says otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelhub.domain.monitor_report import (
    Accuracy,
    AccuracyPoint,
    Cost,
    DegradationVerdict,
    DeploymentState,
    Drift,
    FeatureDrift,
    FiredAlert,
    MinutePoint,
    MonitorReport,
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


def sample_report(model: str = "intents", message: str = "5% of requests failed") -> MonitorReport:
    """A full report: an hour of minutes, every section filled, one of each finding."""
    from datetime import timedelta

    from modelhub.monitoring.health import health
    from modelhub.monitoring.recommendations import recommend
    from modelhub.monitoring.trend_arrows import trends

    minutes = [
        MinutePoint(
            at=AT + timedelta(minutes=i),
            requests=100,
            errors=i % 7,
            p50_ms=4.0 + i / 30,
            p95_ms=8.0 + i / 10,
            p99_ms=None if i == 30 else 12.0 + i,
        )
        for i in range(60)
    ]
    now = performance(errors=500, error_rate=0.05, p99_ms=60.0, in_flight_peak=9, series=minutes)
    before = performance()
    drift = Drift(
        version=3,
        drifted=True,
        drifted_features=[model],
        features=[
            FeatureDrift(
                feature=model,
                test="Kolmogorov-Smirnov",
                statistic=0.4,
                p_value=1e-9,
                threshold=0.05,
                drifted=True,
            )
        ],
    )
    accuracy = Accuracy(
        metric="accuracy",
        value=0.8,
        previous=0.9,
        labelled=500,
        predictions=6000,
        series=[
            AccuracyPoint(at=AT, value=0.85, labelled=250),
            AccuracyPoint(at=AT + timedelta(minutes=30), value=0.8, labelled=250),
        ],
    )
    alerts = [
        FiredAlert(
            id=1,
            subject=f"model:{model}",
            rule="error_rate",
            severity="critical",
            message=message,
            state="firing",
            fired_at=AT,
        )
    ]
    verdicts = [
        DegradationVerdict(
            metric="error_rate",
            test="two-proportion z",
            statistic=9.1,
            p_value=1e-12,
            baseline=0.0002,
            current=0.05,
            degraded=True,
        )
    ]
    observed = healthy(
        model=model,
        performance=now,
        previous=before,
        drift=drift,
        accuracy=accuracy,
        alerts=alerts,
        degradation=verdicts,
        objectives=Objectives(p99_ms=40.0),
    )
    cost = Cost(total=6.0, previous_total=3.0, per_1000_requests=0.6)
    return MonitorReport(
        model=model,
        version=None,
        since="1h",
        start=AT,
        end=AT + timedelta(hours=1),
        generated_at=AT + timedelta(hours=1),
        health=health(observed),
        performance=now,
        trends=trends(now, before, accuracy, cost),
        degradation=verdicts,
        drift=drift,
        accuracy=accuracy,
        cost=cost,
        alerts=alerts,
        deployments=list(observed.deployments),
        recommendations=recommend(observed),
        notes={"budget": f"no budget covers {model}"},
    )
