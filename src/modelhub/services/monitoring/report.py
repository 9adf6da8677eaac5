"""The monitor report of one model: every monitoring figure in one record.

`MonitorService.report` composes what the other monitoring services measure (history,
accuracy from feedback, drift, degradation tests, alerts, cost: `MonitorSources`) with
the registry's version records and the deployments' replica health, then asks the
engine for the health score (monitoring/health.py) and the recommendations
(monitoring/recommendations.py). Every source is optional: a part that is not wired,
has no data or refuses (a version without a drift reference) leaves its section empty
and says why in `notes`, and the rest of the report still renders.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from modelhub.domain.auth import Action, Caller, format_duration, parse_duration
from modelhub.domain.monitor_report import (
    Accuracy,
    Cost,
    DegradationVerdict,
    DeploymentHeadline,
    DeploymentState,
    Drift,
    FiredAlert,
    MonitorReport,
    Performance,
    Traffic,
)
from modelhub.domain.monitoring import PerformanceSummary, Window
from modelhub.domain.predictions import AccuracySummary
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput, ModelhubError, NotFound
from modelhub.monitoring.health import LOWER_IS_BETTER, health
from modelhub.monitoring.observations import MIN_LABELLED, MIN_REQUESTS, Objectives, Observations
from modelhub.monitoring.recommendations import recommend
from modelhub.monitoring.trend_arrows import trends
from modelhub.services.monitoring.report_figures import (
    accuracy_record,
    alert_record,
    cost_record,
    deployment_state,
    drift_record,
    performance_record,
)

if TYPE_CHECKING:
    from modelhub.domain.degradation import Verdict
    from modelhub.monitoring.degradation import WindowTests
    from modelhub.services.auth import AuthService
    from modelhub.services.deployments import DeploymentService
    from modelhub.services.monitoring.alerts import AlertService
    from modelhub.services.monitoring.cost import CostService
    from modelhub.services.monitoring.drift import DriftService
    from modelhub.services.monitoring.history import HistoryService
    from modelhub.services.monitoring.predictions import PredictionService
    from modelhub.services.registry import RegistryService

# The longest window a report covers: the hourly roll-ups' default retention.
MAX_SINCE = timedelta(days=90)
# A model tag that sets its own p99 objective in ms (`models update NAME --tag ...`).
OBJECTIVE_TAG = "p99_objective_ms"


@dataclass(frozen=True)
class MonitorSources:
    """The other monitoring services the report reads; None where not wired."""

    history: HistoryService | None = None
    predictions: PredictionService | None = None
    drift: DriftService | None = None
    degradation: WindowTests | None = None
    alerts: AlertService | None = None
    cost: CostService | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def parse_since(since: str | timedelta) -> timedelta:
    """A report window: `24h`, `7d` ... up to MAX_SINCE; InvalidInput naming `since`."""
    length = parse_duration(since, field="since") if isinstance(since, str) else since
    if length <= timedelta(0) or length > MAX_SINCE:
        raise InvalidInput(
            f"since must be a positive duration of at most {MAX_SINCE.days}d",
            {"field": "since", "value": format_duration(length)},
        )
    return length


class MonitorService:
    def __init__(
        self,
        registry: RegistryService,
        deployments: DeploymentService,
        auth: AuthService,
        objectives: Objectives,
        sources: MonitorSources | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.registry = registry
        self.deployments = deployments
        self.auth = auth
        self.objectives = objectives
        self.sources = sources or MonitorSources()
        self.clock = clock

    def report(
        self, caller: Caller, model: str, since: str | timedelta = "24h", version: int | None = None
    ) -> MonitorReport:
        """The report of `model` over the last `since`, for one version or all of them.

        NotFound for an unknown model or version, InvalidInput for a bad `since`;
        anything a monitoring source cannot tell becomes a note, never an error.
        """
        self.auth.authorize(caller, Action.MODELS_READ)
        length = parse_since(since)
        registered = self.registry.get_model(model)  # NotFound names the model
        asked = self.registry.get(f"{model}@{int(version)}") if version is not None else None
        window = Window.last(length, self.clock())
        notes: dict[str, str] = {}
        deployments = [
            deployment_state(d)
            for d in self.deployments.list_all(caller, None, model, False)
            if version is None or version in d.versions
        ]
        current, previous = self._performance(model, window, version, notes)
        performance = performance_record(current) if current is not None else None
        before = performance_record(previous) if previous is not None else None
        focus = asked or self._busiest(model, performance, deployments)
        accuracy, raw_accuracy = self._accuracy(model, window, version, notes)
        drift, reference_missing = self._drift(model, focus, window, notes)
        cost = self._cost(model, window, performance, notes)
        observed = Observations(
            model=model,
            version=focus,
            performance=performance,
            previous=before,
            degradation=self._degradation(current, previous, raw_accuracy, notes),
            drift=drift,
            reference_missing=reference_missing,
            accuracy=accuracy,
            alerts=self._alerts(model, window, notes),
            deployments=deployments,
            objectives=model_objectives(self.objectives, registered.tags),
        )
        if not deployments:
            serving = f"{model}@{version}" if version is not None else model
            notes["deployments"] = f"no live deployment serves {serving}"
        return MonitorReport(
            model=model,
            version=version,
            since=since if isinstance(since, str) else format_duration(length),
            start=window.start,
            end=window.end,
            generated_at=self.clock(),
            health=health(observed),
            performance=performance,
            trends=trends(performance, before, accuracy, cost),
            degradation=list(observed.degradation),
            drift=drift,
            accuracy=accuracy,
            cost=cost,
            alerts=list(observed.alerts),
            deployments=deployments,
            recommendations=recommend(observed),
            notes=notes,
        )

    def headlines(self, caller: Caller, since: str = "1h") -> list[DeploymentHeadline]:
        """Every live deployment with what it served over `since` (at most 24h) and
        the alerts firing now about it or its model: three queries in all."""
        self.auth.authorize(caller, Action.MODELS_READ)
        live = self.deployments.list_all(caller)
        history = self.sources.history
        traffic = history.recent_traffic(caller, [d.name for d in live], since) if history else {}
        feed = self.sources.alerts
        firing = feed.list_alerts(caller, firing_only=True, limit=1000) if feed else []

        def about(deployment: str, model: str) -> int:
            subjects = {f"deployment:{deployment}", f"model:{model}"}
            return sum(
                1
                for alert in firing
                if alert.subject in subjects
                or alert.labels.get("deployment") == deployment
                or alert.labels.get("model") == model
            )

        return [
            DeploymentHeadline(
                model=d.model,
                deployment=deployment_state(d),
                traffic=traffic.get(d.name, Traffic()),
                firing_alerts=about(d.name, d.model),
            )
            for d in live
        ]

    # -- each source, each optional ----------------------------------------------------

    def _performance(
        self, model: str, window: Window, version: int | None, notes: dict[str, str]
    ) -> tuple[PerformanceSummary | None, PerformanceSummary | None]:
        history = self.sources.history
        if history is None:
            notes["performance"] = "performance history is not available on this server"
            return None, None
        try:
            current = history.performance(model, window, version=version)
            previous = history.performance(model, window.previous(), version=version)
        except ModelhubError as exc:
            notes["performance"] = f"performance history: {exc.message}"
            return None, None
        if current.requests == 0:
            notes["performance"] = "no requests in the window"
        return current, previous

    def _busiest(
        self, model: str, performance: Performance | None, deployments: list[DeploymentState]
    ) -> ModelVersion | None:
        """The version in focus when none was asked: the one that served most requests,
        else the one a live deployment serves, else the latest."""
        number = None
        if performance is not None and performance.versions:
            number = max(performance.versions, key=lambda v: (v.requests, v.version)).version
        elif deployments and deployments[0].versions:
            number = deployments[0].versions[-1]
        if number is not None:
            try:
                return self.registry.get(f"{model}@{number}")
            except NotFound:
                pass  # deleted since it served: fall back to the latest
        versions = self.registry.versions(model)
        return max(versions, key=lambda v: v.version) if versions else None

    def _accuracy(
        self, model: str, window: Window, version: int | None, notes: dict[str, str]
    ) -> tuple[Accuracy | None, tuple[AccuracySummary, AccuracySummary] | None]:
        predictions = self.sources.predictions
        if predictions is None:
            notes["accuracy"] = "accuracy from feedback is not available on this server"
            return None, None
        try:
            current = predictions.accuracy(model, window, version=version)
            previous = predictions.accuracy(model, window.previous(), version=version)
        except ModelhubError as exc:
            notes["accuracy"] = f"accuracy: {exc.message}"
            return None, None
        if current.labelled == 0 or current.value is None:
            notes["accuracy"] = (
                f"no feedback in the window ({current.predictions} predictions logged): "
                f"post labels with `modelhub feedback {model} --file labels.jsonl`"
            )
            return None, None
        return accuracy_record(current, previous), (previous, current)

    def _drift(
        self, model: str, focus: ModelVersion | None, window: Window, notes: dict[str, str]
    ) -> tuple[Drift | None, bool]:
        source = self.sources.drift
        if source is None:
            notes["drift"] = "drift checks are not available on this server"
            return None, False
        if focus is None:
            notes["drift"] = f"{model} has no version to check"
            return None, False
        try:
            report = source.check(model, focus.version, window)
        except NotFound as exc:
            notes["drift"] = f"no drift reference for {model}@{focus.version}: {exc.message}"
            return None, True
        except ModelhubError as exc:
            notes["drift"] = f"drift: {exc.message}"
            return None, False
        if not report.features:  # nothing compared: no verdict to show, only why
            why = "; ".join(f"{name}: {reason}" for name, reason in report.skipped.items())
            notes["drift"] = (
                f"drift of {model}@{focus.version} not tested over {report.live_rows} "
                f"logged rows" + (f" ({why})" if why else "")
            )
            return None, False
        return drift_record(focus.version, report), False

    def _degradation(
        self,
        current: PerformanceSummary | None,
        previous: PerformanceSummary | None,
        accuracy: tuple[AccuracySummary, AccuracySummary] | None,
        notes: dict[str, str],
    ) -> list[DegradationVerdict]:
        tests = self.sources.degradation
        if tests is None:
            notes["degradation"] = "degradation tests are not available on this server"
            return []
        verdicts: list[DegradationVerdict] = []
        enough = (
            current is not None
            and previous is not None
            and min(current.requests, previous.requests) >= MIN_REQUESTS
        )
        if current is not None and previous is not None and enough:
            outcome = tests.latency(previous.latency_sketch, current.latency_sketch)
            verdicts.extend(_verdict("latency", outcome, previous.p99_ms, current.p99_ms))
            outcome = tests.error_rate(
                (previous.requests, previous.errors), (current.requests, current.errors)
            )
            verdicts.extend(
                _verdict("error_rate", outcome, previous.error_rate, current.error_rate)
            )
        if accuracy is not None:
            before, now = accuracy
            # A test of proportions: for metrics that are a share of correct answers.
            proportion = now.metric not in LOWER_IS_BETTER and before.value is not None
            if proportion and min(before.labelled, now.labelled) >= MIN_LABELLED:
                outcome = tests.accuracy(_correct(before), _correct(now))
                verdicts.extend(_verdict(now.metric, outcome, before.value, now.value))
        if not verdicts:
            notes["degradation"] = (
                f"too little traffic to test: each window needs {MIN_REQUESTS} requests "
                f"({MIN_LABELLED} labelled predictions for accuracy)"
            )
        return verdicts

    def _alerts(self, model: str, window: Window, notes: dict[str, str]) -> list[FiredAlert]:
        feed = self.sources.alerts
        if feed is None:
            notes["alerts"] = "alerts are not available on this server"
            return []
        try:
            return [alert_record(alert) for alert in feed.fired(model, window)]
        except ModelhubError as exc:
            notes["alerts"] = f"alerts: {exc.message}"
            return []

    def _cost(
        self, model: str, window: Window, performance: Performance | None, notes: dict[str, str]
    ) -> Cost | None:
        source = self.sources.cost
        if source is None:
            notes["cost"] = "cost is not available on this server"
            return None
        try:
            current = source.model_cost(model, window)
            previous = source.model_cost(model, window.previous())
        except ModelhubError as exc:
            notes["cost"] = f"cost: {exc.message}"
            return None
        return cost_record(current, previous, performance.requests if performance else None)


def model_objectives(defaults: Objectives, tags: Mapping[str, str]) -> Objectives:
    """The settings' objectives, with the model's own p99 objective where its tag
    `OBJECTIVE_TAG` names one (a positive number of milliseconds)."""
    text = tags.get(OBJECTIVE_TAG)
    if text is None:
        return defaults
    try:
        p99 = float(text)
    except ValueError:
        return defaults  # a tag is free text: one that is not a number sets nothing
    if not math.isfinite(p99) or p99 <= 0:
        return defaults
    return replace(defaults, p99_ms=p99)


def _correct(summary: AccuracySummary) -> tuple[int, int]:
    """(labelled, correct) of an accuracy-like metric, for a test of proportions."""
    value = summary.value or 0.0
    return summary.labelled, round(value * summary.labelled)


def _verdict(
    metric: str, outcome: Verdict, baseline: float | None, current: float | None
) -> list[DegradationVerdict]:
    """The test's verdict, or none when it could not run (its reason is in the notes)."""
    if outcome.statistic is None or outcome.p_value is None:
        return []
    return [
        DegradationVerdict(
            metric=metric,
            test=outcome.test,
            statistic=outcome.statistic,
            p_value=outcome.p_value,
            baseline=baseline,
            current=current,
            degraded=outcome.worse,
        )
    ]
