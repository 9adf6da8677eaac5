"""Automated canary analysis: promote or roll back a canary on its measured results.

A rollout started with `--analysis auto` carries its `CanaryAnalysis` (minimum
requests, time allowed, alpha, minimum effect, start). Every `canary_interval_seconds`
the server's loop (`evaluate_once`) looks at each canary in place:

    fewer canary requests than min_requests, time left   -> wait
    fewer, time up                                       -> inconclusive: a person decides
    enough                                               -> compare canary with stable

The comparison takes both versions over the same window (the minute the canary
started until now), so that both saw the same hours and the same callers, and runs the degradation
tests (`monitoring.degradation`): error rate, latency, and accuracy where feedback
exists. Worse on any: roll back; otherwise promote, through the deployment service's
own promote and rollback (the manual commands stay). Each decision is recorded with
its figures and tests, audited in the same write, and alerted: a rollback or an
inconclusive canary fires (a person should look); a promotion fires as `info` and
resolves at once, so receivers hear of it and nothing stays firing. The record is written
before acting and is unique per canary, so with several servers on one database only
one of them acts.

Traffic comes from the per-minute roll-ups (HistoryService), accuracy from feedback
(PredictionService), and alerts go to the alert engine (AlertService).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelhub.domain.auth import Action, Caller, Role
from modelhub.domain.canary import CanaryDecision, CanaryOutcome, CanaryStatus, VersionFigures
from modelhub.domain.degradation import DegradationPolicy, DegradationReport
from modelhub.domain.deployments import AnalysisMode, CanaryAnalysis, Deployment, DeploymentStatus
from modelhub.domain.monitoring import Window
from modelhub.errors import Conflict, ModelhubError
from modelhub.stores.metadata.base import AuditDraft

if TYPE_CHECKING:
    from modelhub.monitoring.degradation import Traffic
    from modelhub.services.auth import AuthService
    from modelhub.services.deployments import DeploymentService
    from modelhub.services.monitoring.alerts import AlertService
    from modelhub.services.monitoring.history import HistoryService
    from modelhub.services.monitoring.predictions import PredictionService
    from modelhub.settings import Settings
    from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger("modelhub.canary")

# The platform acts under this name in the audit log (a reserved user name).
ANALYST = Caller(name="system", role=Role.ADMIN)
ALERT_RULE = "canary_analysis"
SEVERITY = {
    CanaryOutcome.PROMOTE: "info",
    CanaryOutcome.ROLLBACK: "critical",
    CanaryOutcome.INCONCLUSIVE: "warning",
}


def _now() -> datetime:
    return datetime.now(UTC)


class CanaryService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        deployments: DeploymentService,
        auth: AuthService,
        traffic: HistoryService | None = None,
        alerts: AlertService | None = None,
        feedback: PredictionService | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.deployments = deployments
        self.auth = auth
        # Wired by build_services; without traffic the analysis decides nothing.
        self.traffic = traffic
        self.alerts = alerts
        self.feedback = feedback
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ----------------------------------------------------------------------

    def decisions(self, caller: Caller, name: str, limit: int = 20) -> list[CanaryDecision]:
        """The analysis' decisions about deployment `name`, newest first."""
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        self.metadata.get_deployment(name)  # NotFound names it
        return self.metadata.list_canary_decisions(name, limit)

    def status(self, caller: Caller, name: str, limit: int = 20) -> CanaryStatus:
        """The automated analysis of the canary in place, if any, and the decisions."""
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        rollout = self.metadata.get_deployment(name).rollout
        decisions = self.metadata.list_canary_decisions(name, limit)
        return CanaryStatus(
            deployment=name,
            analysis=rollout.analysis if rollout is not None else None,
            latest=decisions[0] if decisions else None,
            decisions=decisions,
        )

    # -- deciding ---------------------------------------------------------------------

    def evaluate_once(self, now: datetime | None = None) -> list[CanaryDecision]:
        """Decide every automated canary that can be decided now; the decisions made."""
        now = now or self.clock()
        if self.traffic is None:
            return []
        made = []
        for deployment in self.metadata.list_deployments():
            analysis = _automated(deployment)
            if analysis is None or self._decided(deployment.name, analysis):
                continue
            try:
                decision = self._evaluate(deployment, analysis, now)
            except Exception:
                log.exception("canary analysis of %s failed; it is tried again", deployment.name)
                continue
            if decision is not None:
                made.append(decision)
        return made

    def _decided(self, name: str, analysis: CanaryAnalysis) -> bool:
        latest = self.metadata.list_canary_decisions(name, limit=1)
        return bool(latest) and latest[0].started_at == analysis.started_at

    def _evaluate(
        self, deployment: Deployment, analysis: CanaryAnalysis, now: datetime
    ) -> CanaryDecision | None:
        assert deployment.rollout is not None
        # Traffic is kept per minute (roll-ups start on the minute): the window starts
        # on the canary's first minute, so its first requests count. Stable may get up
        # to a minute from before the canary in: the same version, behaving the same.
        window = Window(start=analysis.started_at.replace(second=0, microsecond=0), end=now)
        stable, stable_traffic = self._served(deployment, deployment.rollout.from_version, window)
        canary, canary_traffic = self._served(deployment, deployment.rollout.to_version, window)
        enough = canary.requests >= analysis.min_requests
        time_up = (now - analysis.started_at).total_seconds() >= analysis.max_seconds
        if not enough and not time_up:
            return None
        # numpy and scipy load with the first canary to judge, not with every CLI command.
        from modelhub.monitoring.degradation import degradation

        policy = DegradationPolicy(alpha=analysis.alpha, min_effect=analysis.min_effect)
        report = degradation(stable_traffic, canary_traffic, policy)
        if enough and any(verdict.tested for verdict in report.verdicts):
            outcome = CanaryOutcome.ROLLBACK if report.worse else CanaryOutcome.PROMOTE
        elif time_up:
            outcome = CanaryOutcome.INCONCLUSIVE
        else:
            return None  # nothing to compare with yet: stable served too little beside it
        decision = CanaryDecision(
            deployment=deployment.name,
            model=deployment.model,
            stable=stable,
            canary=canary,
            outcome=outcome,
            reason=_reason(outcome, report, stable, canary, analysis),
            verdicts=report.verdicts if outcome is not CanaryOutcome.INCONCLUSIVE else [],
            started_at=analysis.started_at,
            decided_at=now,
        )
        audit = AuditDraft(
            ANALYST.name,
            "deployments.canary_decision",
            deployment.name,
            {"outcome": outcome.value, "stable": stable.version, "canary": canary.version},
        )
        try:
            stored = self.metadata.add_canary_decision(decision, audit)
        except Conflict:
            return None  # another server decided this canary
        self._act(stored)
        return stored

    def _served(
        self, deployment: Deployment, version: int, window: Window
    ) -> tuple[VersionFigures, Traffic]:
        from modelhub.monitoring.degradation import Traffic

        assert self.traffic is not None
        requests, errors = self.traffic.counts(deployment.name, version, window)
        sketch = self.traffic.latency_sketch(deployment.name, version, window)
        labelled = correct = 0
        if self.feedback is not None:
            figures = self.feedback.accuracy(deployment.model, window, version=version)
            if figures.metric == "accuracy" and figures.value is not None and figures.labelled:
                labelled, correct = figures.labelled, round(figures.value * figures.labelled)
        counted = sketch.count > 0
        served = VersionFigures(
            version=version,
            requests=requests,
            errors=errors,
            p50_ms=sketch.get_quantile_value(0.5) if counted else None,
            p99_ms=sketch.get_quantile_value(0.99) if counted else None,
            labelled=labelled,
            correct=correct,
        )
        return served, Traffic(requests, errors, sketch, labelled, correct)

    def _act(self, decision: CanaryDecision) -> None:
        name = decision.deployment
        failure = None
        try:
            if decision.outcome is CanaryOutcome.PROMOTE:
                self.deployments.promote(ANALYST, name)
            elif decision.outcome is CanaryOutcome.ROLLBACK:
                self.deployments.rollback(ANALYST, name)
        except ModelhubError as exc:  # a person promoted, rolled back or stopped first
            failure = exc.message
            log.warning("canary analysis of %s could not %s: %s", name, decision.outcome, failure)
        if self.alerts is None:
            return
        message = f"canary of {name} (version {decision.canary.version}): {decision.reason}"
        if failure is not None:
            message += f"; acting on it failed: {failure}"
        subject = f"deployment:{name}"
        self.alerts.fire(
            subject,
            ALERT_RULE,
            SEVERITY[decision.outcome],
            message,
            {
                "deployment": name,
                "model": decision.model,
                "version": str(decision.canary.version),
                "stable_version": str(decision.stable.version),
                "decision": decision.outcome.value,
            },
        )
        if decision.outcome is CanaryOutcome.PROMOTE and failure is None:
            # Nothing is left to act on: the notice goes out, then the alert resolves.
            self.alerts.resolve(subject, ALERT_RULE)

    # -- the server's loop -------------------------------------------------------------

    def start(self, interval_seconds: float | None = None) -> None:
        """Evaluate every `interval_seconds` (default: the `canary_interval_seconds`
        setting) on a thread, until `stop`."""
        if self._thread is not None:
            return
        interval = interval_seconds or self.settings.canary_interval_seconds
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(interval,), name="canary-analysis", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.evaluate_once()
            except Exception:  # the database went away a moment: the next round retries
                log.exception("canary analysis round failed")


def _automated(deployment: Deployment) -> CanaryAnalysis | None:
    """The analysis of a canary in place and serving both versions, if it is automated."""
    rollout = deployment.rollout
    if (
        rollout is None
        or rollout.analysis is None
        or rollout.analysis.mode is not AnalysisMode.AUTO
        or deployment.status is not DeploymentStatus.UPDATING
        or len(deployment.traffic) != 2
    ):
        return None
    return rollout.analysis


def _reason(
    outcome: CanaryOutcome,
    report: DegradationReport,
    stable: VersionFigures,
    canary: VersionFigures,
    analysis: CanaryAnalysis,
) -> str:
    if outcome is CanaryOutcome.INCONCLUSIVE:
        if canary.requests < analysis.min_requests:
            return (
                f"inconclusive: the canary served {canary.requests} of the "
                f"{analysis.min_requests} requests needed in {analysis.max_seconds:g} s"
            )
        return (
            f"inconclusive: stable served {stable.requests} requests beside the canary's "
            f"{canary.requests}, too few to compare with in {analysis.max_seconds:g} s"
        )
    if outcome is CanaryOutcome.ROLLBACK:
        worse = [v for v in report.verdicts if v.worse]
        return "worse than stable: " + "; ".join(f"{v.metric.value} {v.reason}" for v in worse)
    tested = [v.metric.value for v in report.verdicts if v.tested]
    return f"not worse than stable on {', '.join(tested)}"
