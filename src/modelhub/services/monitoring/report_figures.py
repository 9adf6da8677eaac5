"""The monitoring services' figures turned into the report's records (monitor_report.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modelhub.domain.alerts import Alert
from modelhub.domain.cost import CostSummary
from modelhub.domain.deployments import Deployment, DeploymentStatus
from modelhub.domain.drift import DriftReport
from modelhub.domain.monitor_report import (
    Accuracy,
    AccuracyPoint,
    Cost,
    DeploymentState,
    Drift,
    FeatureDrift,
    FiredAlert,
    MinutePoint,
    Performance,
    VersionFigures,
)
from modelhub.domain.monitoring import PerformancePoint, PerformanceSummary
from modelhub.domain.predictions import AccuracySummary

# The charts show at most this many points: a 7-day window of minutes is bucketed.
CHART_POINTS = 240


def performance_record(summary: PerformanceSummary) -> Performance:
    return Performance(
        requests=summary.requests,
        errors=summary.errors,
        error_rate=summary.error_rate,
        errors_by_kind=dict(summary.errors_by_kind),
        rows=summary.rows,
        throughput_rps=summary.throughput_rps,
        p50_ms=summary.p50_ms,
        p95_ms=summary.p95_ms,
        p99_ms=summary.p99_ms,
        in_flight_peak=summary.in_flight_peak,
        cpu_percent=summary.cpu_percent,
        rss_bytes=summary.rss_bytes,
        gpu_util=summary.gpu_util,
        gpu_memory_bytes=summary.gpu_memory_bytes,
        versions=[
            VersionFigures(
                version=number,
                requests=figures.requests,
                errors=figures.errors,
                error_rate=figures.error_rate,
                p50_ms=figures.p50_ms,
                p99_ms=figures.p99_ms,
            )
            for number, figures in sorted(summary.versions.items())
        ],
        series=chart_series(summary.series),
    )


def chart_series(
    minutes: Sequence[PerformancePoint], points: int = CHART_POINTS
) -> list[MinutePoint]:
    """At most `points` points: consecutive minutes merged, requests and errors summed,
    each percentile the highest of its minutes (a spike stays visible), p50 the
    request-weighted mean."""
    ordered = sorted(minutes, key=lambda minute: minute.start)
    size = max(1, -(-len(ordered) // points))
    series = []
    for start in range(0, len(ordered), size):
        bucket = ordered[start : start + size]
        requests = sum(m.requests for m in bucket)
        weighted = [(m.p50_ms, m.requests) for m in bucket if m.p50_ms is not None]
        weight = sum(w for _, w in weighted)
        p50 = (
            sum(v * w for v, w in weighted) / weight
            if weight
            else (max(v for v, _ in weighted) if weighted else None)
        )
        series.append(
            MinutePoint(
                at=bucket[0].start,
                requests=requests,
                errors=sum(m.errors for m in bucket),
                p50_ms=p50,
                p95_ms=_highest(m.p95_ms for m in bucket),
                p99_ms=_highest(m.p99_ms for m in bucket),
            )
        )
    return series


def _highest(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def accuracy_record(current: AccuracySummary, previous: AccuracySummary | None) -> Accuracy:
    before = previous.value if previous is not None and previous.labelled else None
    return Accuracy(
        metric=current.metric,
        value=current.value,
        previous=before,
        labelled=current.labelled,
        predictions=current.predictions,
        versions={v.version: v.value for v in current.per_version if v.value is not None},
        series=[
            AccuracyPoint(at=point.start, value=point.value, labelled=point.labelled)
            for point in current.series
        ],
    )


def drift_record(version: int, report: DriftReport) -> Drift:
    return Drift(
        version=version,
        drifted=report.drifted,
        features=[
            FeatureDrift(
                feature=f.feature,
                test=f.test,
                statistic=f.statistic,
                p_value=f.p_value,
                distance=f.distance,
                threshold=f.threshold,
                drifted=f.drifted,
            )
            for f in report.features
        ],
        drifted_features=list(report.drifted_features),
    )


def cost_record(current: CostSummary, previous: CostSummary | None, requests: int | None) -> Cost:
    return Cost(
        total=current.total,
        currency=current.currency,
        previous_total=previous.total if previous is not None else None,
        per_1000_requests=current.total / requests * 1000 if requests else None,
    )


def alert_record(alert: Alert) -> FiredAlert:
    return FiredAlert(
        id=alert.id,
        subject=alert.subject,
        rule=alert.rule,
        severity=alert.severity,
        message=alert.message,
        state=alert.state,
        fired_at=alert.fired_at,
        resolved_at=alert.resolved_at,
    )


def deployment_state(deployment: Deployment) -> DeploymentState:
    """The deployment's versions stable first and canary last, and its ready replicas."""
    versions = deployment.versions
    rollout = deployment.rollout
    if rollout is not None and rollout.canary and rollout.to_version in versions:
        versions = [v for v in versions if v != rollout.to_version] + [rollout.to_version]
    # Running: its replicas' reported readiness counts; failed: none is ready; while
    # deploying or updating, replicas are expected to be starting and count as asked.
    if deployment.status is DeploymentStatus.FAILED:
        ready = 0
    elif deployment.status is DeploymentStatus.RUNNING and deployment.health:
        ready = sum(1 for replica in deployment.health if replica.ready)
    else:
        ready = deployment.replicas
    return DeploymentState(
        name=deployment.name,
        environment=deployment.environment.value,
        versions=versions,
        previous_version=deployment.previous_version,
        replicas=deployment.replicas,
        healthy_replicas=ready,
        status=deployment.status.value,
    )
