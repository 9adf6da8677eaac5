"""What to do about what a report saw: each recommendation names the figure and the fix.

- scale_out: p99 over its objective (or the previous window) while requests queue at
  the replicas (more in flight at the peak than replicas). By Little's law a replica
  holds in flight = its throughput x latency; once it is saturated, a request's wait
  grows with the requests ahead of it, so latency scales with in-flight per replica.
  Bringing p99 down by the factor p99 / target needs each replica to hold that factor
  fewer requests at the same total throughput: replicas' = ceil(replicas x p99 / target),
  at least one more than now and at most `max_replicas`.
- roll_back: a deployment serves a version that measured clearly worse than another
  version of the same model in this window or the previous one (error rate at least
  double and one point higher, p99 30 % higher, or the feedback metric 3 points lower),
  both with enough requests or labels to say so.
- retrain: the drift check's corrected verdict found drifted features; the version's
  lineage names the pipeline that trained it, to run again on recent data.
- quantize: an fp32 version at least `quantize_min_bytes` large whose p99 is high
  (over its objective, or over `slow_p99_ms` without one).
- set_reference: drift could not be checked because the version has no reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from modelhub.domain.enums import Precision
from modelhub.domain.monitor_report import DeploymentState, Recommendation, VersionFigures
from modelhub.monitoring.health import LOWER_IS_BETTER
from modelhub.monitoring.observations import MIB, MIN_LABELLED, MIN_REQUESTS, Observations

WORSE_ERROR_RATIO, WORSE_ERROR_POINTS = 2.0, 0.01
WORSE_P99_RATIO = 1.3
WORSE_ACCURACY_POINTS = 0.03


def recommend(observed: Observations) -> list[Recommendation]:
    found: list[Recommendation] = []
    for rule in (scale_out, roll_back, retrain, quantize, set_reference):
        found.extend(rule(observed))
    return found


def scale_out(observed: Observations) -> Iterator[Recommendation]:
    over = observed.p99_over_reference()
    performance = observed.performance
    if over is None or performance is None:
        return
    p99, target, what = over
    # The model's figures cover all its deployments: in flight and throughput are
    # shared out over all their replicas.
    total = sum(d.replicas for d in observed.deployments)
    if total < 1 or performance.in_flight_peak <= total:
        return  # no request waited behind another: more replicas would not help
    per_replica_rps = performance.throughput_rps / total
    in_flight = performance.in_flight_peak / total
    for deployment in observed.deployments:
        replicas = deployment.replicas
        if replicas < 1 or replicas >= observed.objectives.max_replicas:
            continue
        wanted = max(replicas + 1, math.ceil(replicas * p99 / target))
        wanted = min(wanted, observed.objectives.max_replicas)
        yield Recommendation(
            kind="scale_out",
            seen=f"p99 {p99:.1f} ms is over its {what} {target:.1f} ms while requests queue: "
            f"{in_flight:.1f} in flight per replica at the peak, "
            f"{per_replica_rps:.1f} requests/s per replica",
            action=f"scale {deployment.name} from {replicas} to {wanted} replicas "
            f"(ceil({replicas} x {p99:.1f} / {target:.1f}): latency under queueing scales "
            "with the requests each replica holds)",
            command=f"modelhub deployments scale {deployment.name} {wanted}",
            figures={
                "replicas": replicas,
                "recommended_replicas": wanted,
                "p99_ms": round(p99, 3),
                "target_ms": round(target, 3),
                "throughput_per_replica_rps": round(per_replica_rps, 3),
                "in_flight_per_replica": round(in_flight, 3),
                "in_flight_per_replica_after": round(
                    performance.in_flight_peak / (total - replicas + wanted), 3
                ),
            },
        )


def _served_version(deployment: DeploymentState) -> int | None:
    """The version on trial: the canary when there is one (versions list it last)."""
    return deployment.versions[-1] if deployment.versions else None


def _versions_seen(observed: Observations) -> dict[int, VersionFigures]:
    """Each version's figures: from this window, else from the previous one."""
    seen: dict[int, VersionFigures] = {}
    for performance in (observed.previous, observed.performance):
        for figures in performance.versions if performance else []:
            if figures.requests >= MIN_REQUESTS:
                seen[figures.version] = figures
    return seen


def _worse_by(current: VersionFigures, other: VersionFigures) -> str | None:
    """Which measured figure shows `current` clearly worse than `other`, in words."""
    if current.error_rate >= max(
        WORSE_ERROR_RATIO * other.error_rate, other.error_rate + WORSE_ERROR_POINTS
    ):
        return (
            f"error rate {current.error_rate:.2%} on version {current.version} "
            f"against {other.error_rate:.2%} on version {other.version}"
        )
    if current.p99_ms and other.p99_ms and current.p99_ms >= WORSE_P99_RATIO * other.p99_ms:
        return (
            f"p99 {current.p99_ms:.1f} ms on version {current.version} "
            f"against {other.p99_ms:.1f} ms on version {other.version}"
        )
    return None


def _accuracy_worse(observed: Observations, current: int, other: int) -> str | None:
    accuracy = observed.accuracy
    if accuracy is None or accuracy.labelled < MIN_LABELLED:
        return None
    mine, theirs = accuracy.versions.get(current), accuracy.versions.get(other)
    if mine is None or theirs is None:
        return None
    gap = mine - theirs if accuracy.metric in LOWER_IS_BETTER else theirs - mine
    if gap < WORSE_ACCURACY_POINTS:
        return None
    return (
        f"{accuracy.metric} {mine:.3f} on version {current} against {theirs:.3f} "
        f"on version {other} (from feedback)"
    )


def roll_back(observed: Observations) -> Iterator[Recommendation]:
    seen = _versions_seen(observed)
    accuracy_versions = observed.accuracy.versions if observed.accuracy else {}
    for deployment in observed.deployments:
        served = _served_version(deployment)
        if served is None:
            continue
        # The version served before the last rollout first, then the others, newest first.
        candidates = sorted(
            (set(seen) | set(accuracy_versions)) - {served},
            key=lambda v: (v != deployment.previous_version, -v),
        )
        for other in candidates:
            why = None
            if served in seen and other in seen:
                why = _worse_by(seen[served], seen[other])
            why = why or _accuracy_worse(observed, served, other)
            if why is None:
                continue
            # `rollback` drops a canary (back to the stable version) or, without one,
            # returns to the version served before the last rollout.
            canary = len(deployment.versions) > 1
            reaches = deployment.versions[0] if canary else deployment.previous_version
            command = (
                f"modelhub deployments rollback {deployment.name}"
                if other == reaches
                else f"modelhub deployments update {deployment.name} --version {other}"
            )
            yield Recommendation(
                kind="roll_back",
                seen=f"{deployment.name} serves version {served}, measured worse: {why}",
                action=f"roll {deployment.name} back to version {other}, which was better "
                "on that figure",
                command=command,
                figures={
                    "deployment": deployment.name,
                    "from_version": served,
                    "to_version": other,
                },
            )
            break


def retrain(observed: Observations) -> Iterator[Recommendation]:
    drift = observed.drift
    if drift is None or not drift.drifted:
        return
    features = drift.drifted_features or [f.feature for f in drift.features if f.drifted]
    shown = ", ".join(features)
    version = observed.version
    lineage = version.lineage if version is not None and version.version == drift.version else None
    seen = f"drift in features {shown} of version {drift.version}"
    if lineage is None or not lineage.pipeline:
        yield Recommendation(
            kind="retrain",
            seen=seen,
            action="retrain on recent data: the version has no training lineage, so no "
            "pipeline is known to run again; train one and register its result",
            figures={"version": drift.version, "features": shown},
        )
        return
    run = (
        f" (run {lineage.source_run} trained version {drift.version})" if lineage.source_run else ""
    )
    yield Recommendation(
        kind="retrain",
        seen=seen,
        action=f"retrain with pipeline {lineage.pipeline} on recent data{run}: add recent "
        "inputs (with their feedback labels) as a new version of its dataset, then run it",
        command=f"modelhub pipelines start {lineage.pipeline}",
        figures={"version": drift.version, "pipeline": lineage.pipeline, "features": shown},
    )


def quantize(observed: Observations) -> Iterator[Recommendation]:
    version = observed.version
    performance = observed.performance
    if version is None or performance is None or performance.p99_ms is None:
        return
    if version.precision is not Precision.FP32:
        return
    if version.size < observed.objectives.quantize_min_bytes:
        return
    if performance.requests < MIN_REQUESTS:
        return
    over = observed.p99_over_reference()
    objective = observed.objectives.p99_ms
    slow = objective is None and performance.p99_ms > observed.objectives.slow_p99_ms
    if not slow and (over is None or objective is None):
        return
    yield Recommendation(
        kind="quantize",
        seen=f"version {version.version} is fp32, {version.size / MIB:.0f} MiB, and its "
        f"p99 is {performance.p99_ms:.1f} ms",
        action="register an int8 (dynamically quantized) copy as the next version and "
        "canary it: weights shrink about 4x and CPU inference usually speeds up",
        figures={
            "version": version.version,
            "size_bytes": version.size,
            "p99_ms": round(performance.p99_ms, 3),
        },
    )


def set_reference(observed: Observations) -> Iterator[Recommendation]:
    if not observed.reference_missing:
        return
    version = observed.version
    number = version.version if version is not None else None
    ref = f"{observed.model}@{number}" if number is not None else observed.model
    yield Recommendation(
        kind="set_reference",
        seen=f"drift cannot be checked: {ref} has no reference profile",
        action=f"set a drift reference for {ref} from data like its training data",
        command=f"modelhub monitor reference {ref} --data FILE",
        figures={"version": number} if number is not None else {},
    )
