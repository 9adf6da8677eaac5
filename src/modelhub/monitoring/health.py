"""One health score per model, 0-100, and the parts that lowered it.

The score starts at 100 and each part takes off points in proportion to how far its
figure is from healthy, up to a cap, so one bad figure cannot hide the others and a
model is never worse than 0. docs/monitoring.md ("Health score") lists the same table:

| part | measured against | points off | cap |
|---|---|---|---|
| latency | p99 vs objective, else previous p99 | 20 x (ratio - 1), past 10 % over | 20 |
| error_rate | share of failed requests | 300 x rate (1 % = 3), past 0.1 % | 30 |
| degradation | each significant test | 10 each | 20 |
| drift | corrected overall verdict | 5 + 15 x share drifted | 20 |
| accuracy | previous window, else the version's metric | 200 x drop (0.9 -> 0.8 = 20) | 25 |
| alerts | alerts firing now | critical 15, warning 5, other 1 | 20 |
| replicas | replicas not ready of those asked for | 30 x share not ready | 30 |

A part with too little data (fewer than MIN_REQUESTS requests, MIN_LABELLED labels)
takes nothing off: the report says "not enough data" rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable

from modelhub.domain.monitor_report import Health, HealthPart
from modelhub.monitoring.observations import MIN_LABELLED, MIN_REQUESTS, Observations

# Metrics where a smaller value is better; any other metric is taken as larger-better.
LOWER_IS_BETTER = frozenset({"mae", "mse", "rmse", "loss", "log_loss", "perplexity", "wer", "cer"})

LATENCY_CAP, ERROR_CAP, DEGRADATION_CAP, DRIFT_CAP = 20.0, 30.0, 20.0, 20.0
ACCURACY_CAP, ALERT_CAP, REPLICA_CAP = 25.0, 20.0, 30.0
ERROR_FLOOR = 0.001  # error rates at or below 0.1 % cost nothing
ACCURACY_FLOOR = 0.01  # drops of one point or less cost nothing
ALERT_POINTS = {"critical": 15.0, "warning": 5.0}


def health(observed: Observations) -> Health:
    """The score and its parts, the largest first."""
    rules: tuple[Callable[[Observations], HealthPart | None], ...] = (
        latency_part,
        error_part,
        degradation_part,
        drift_part,
        accuracy_part,
        alerts_part,
        replicas_part,
    )
    parts = [part for rule in rules if (part := rule(observed)) is not None and part.points > 0]
    parts.sort(key=lambda part: part.points, reverse=True)
    score = max(0, round(100 - sum(part.points for part in parts)))
    return Health(score=score, parts=parts)


def _capped(points: float, cap: float) -> float:
    return round(min(cap, max(0.0, points)), 1)


def latency_part(observed: Observations) -> HealthPart | None:
    over = observed.p99_over_reference()
    if over is None:
        return None
    p99, target, what = over
    ratio = p99 / target
    return HealthPart(
        part="latency",
        points=_capped(20 * (ratio - 1), LATENCY_CAP),
        figure=f"p99 {p99:.1f} ms against {what} {target:.1f} ms ({ratio:.2f}x)",
        detail=f"the slowest 1 % of requests take {ratio:.2f} times their {what}",
    )


def error_part(observed: Observations) -> HealthPart | None:
    performance = observed.performance
    if performance is None or performance.requests < MIN_REQUESTS:
        return None
    if performance.error_rate <= ERROR_FLOOR:
        return None
    return HealthPart(
        part="error_rate",
        points=_capped(300 * performance.error_rate, ERROR_CAP),
        figure=f"{performance.error_rate:.2%} of {performance.requests} requests failed",
        detail=f"{performance.errors} requests failed in the window",
    )


def degradation_part(observed: Observations) -> HealthPart | None:
    degraded = [verdict for verdict in observed.degradation if verdict.degraded]
    if not degraded:
        return None
    tests = ", ".join(f"{v.metric} ({v.test}, p={v.p_value:.2g})" for v in degraded)
    return HealthPart(
        part="degradation",
        points=_capped(10 * len(degraded), DEGRADATION_CAP),
        figure=f"{len(degraded)} significant: {tests}",
        detail="worse than the previous window by a statistical test, not a threshold",
    )


def drift_part(observed: Observations) -> HealthPart | None:
    drift = observed.drift
    if drift is None or not drift.drifted:
        return None
    drifted = drift.drifted_features or [f.feature for f in drift.features if f.drifted]
    share = len(drifted) / len(drift.features) if drift.features else 1.0
    shown = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
    return HealthPart(
        part="drift",
        points=_capped(5 + 15 * share, DRIFT_CAP),
        figure=f"{len(drifted)} of {len(drift.features)} features drifted: {shown}",
        detail=f"live inputs of version {drift.version} no longer look like its reference",
    )


def accuracy_reference(observed: Observations) -> tuple[float, str] | None:
    """What the window's accuracy is held against: the previous window, else the version's
    own metric of the same name (measured on its evaluation data when it was trained)."""
    accuracy = observed.accuracy
    if accuracy is None:
        return None
    if accuracy.previous is not None:
        return accuracy.previous, "previous window"
    version = observed.version
    if version is not None and accuracy.metric in version.metrics:
        return version.metrics[accuracy.metric], f"version {version.version}'s evaluation"
    return None


def accuracy_part(observed: Observations) -> HealthPart | None:
    accuracy = observed.accuracy
    reference = accuracy_reference(observed)
    if accuracy is None or accuracy.value is None or reference is None:
        return None
    if accuracy.labelled < MIN_LABELLED:
        return None
    baseline, what = reference
    lower_better = accuracy.metric in LOWER_IS_BETTER
    drop = accuracy.value - baseline if lower_better else baseline - accuracy.value
    if lower_better:
        drop = drop / baseline if baseline else 0.0  # relative: errors have no fixed scale
    if drop <= ACCURACY_FLOOR:
        return None
    return HealthPart(
        part="accuracy",
        points=_capped(200 * drop, ACCURACY_CAP),
        figure=f"{accuracy.metric} {accuracy.value:.3f} against {what} {baseline:.3f} "
        f"({accuracy.labelled} labelled predictions)",
        detail=f"{accuracy.metric} from feedback is worse than its {what}",
    )


def alerts_part(observed: Observations) -> HealthPart | None:
    firing = [alert for alert in observed.alerts if alert.state == "firing"]
    if not firing:
        return None
    points = sum(ALERT_POINTS.get(alert.severity, 1.0) for alert in firing)
    rules = ", ".join(sorted({f"{a.rule} ({a.severity})" for a in firing}))
    return HealthPart(
        part="alerts",
        points=_capped(points, ALERT_CAP),
        figure=f"{len(firing)} firing: {rules}",
        detail="alerts on this model or its deployments are firing now",
    )


def replicas_part(observed: Observations) -> HealthPart | None:
    wanted = sum(d.replicas for d in observed.deployments)
    healthy = sum(min(d.healthy_replicas, d.replicas) for d in observed.deployments)
    if wanted == 0 or healthy >= wanted:
        return None
    share = 1 - healthy / wanted
    return HealthPart(
        part="replicas",
        points=_capped(30 * share, REPLICA_CAP),
        figure=f"{wanted - healthy} of {wanted} replicas not ready",
        detail="requests have fewer replicas to go to than the deployments ask for",
    )
