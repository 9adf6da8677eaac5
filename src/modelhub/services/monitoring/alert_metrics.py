"""The metrics alert rules may name: a registry of readers, and the built-in ones.

A reader takes a scope (a model, deployment, run or the platform) and a window and
returns the figure, or None when there is nothing to measure (no traffic, a run
that is not running): a rule whose metric reads None is not true.

Serving figures come from `HistoryService.performance`, through the `HistorySource`
protocol the monitor report reads it by too; without one, they read None.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from modelhub.domain.alert_rules import LOSS_METRICS
from modelhub.domain.alerts import Scope, ScopeKind
from modelhub.domain.monitoring import PerformanceSummary, Window
from modelhub.domain.runs import RunStatus
from modelhub.errors import InvalidInput
from modelhub.services.monitoring.report_sources import HistorySource
from modelhub.stores.metadata.base import MetadataStore

Reader = Callable[[Scope, Window], float | None]


@dataclass(frozen=True)
class Metric:
    name: str
    scope_kinds: frozenset[ScopeKind]
    read: Reader
    description: str = ""


class MetricRegistry:
    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def register(
        self, name: str, scope_kinds: set[str], read: Reader, description: str = ""
    ) -> None:
        kinds = frozenset(ScopeKind(kind) for kind in scope_kinds)
        self._metrics[name] = Metric(name, kinds, read, description)

    def get(self, name: str) -> Metric:
        metric = self._metrics.get(name)
        if metric is None:
            known = ", ".join(sorted(self._metrics))
            raise InvalidInput(f"unknown metric {name!r}: use one of {known}", {"metric": name})
        return metric

    def all(self) -> list[Metric]:
        return sorted(self._metrics.values(), key=lambda m: m.name)


def register_training(registry: MetricRegistry, metadata: MetadataStore) -> None:
    """Run metrics (scope run) and the platform's queue."""

    def running(scope: Scope) -> tuple[float | None, datetime | None, dict[str, float]]:
        run = metadata.get_run(int(scope.target))
        if run.status != RunStatus.RUNNING:
            return None, None, {}
        return run.progress, run.last_progress_at or run.started_at, run.metrics

    def loss(scope: Scope, window: Window) -> float | None:
        _, _, metrics = running(scope)
        values = [metrics[name] for name in LOSS_METRICS if name in metrics]
        return values[0] if values else None

    def loss_nonfinite(scope: Scope, window: Window) -> float | None:
        value = loss(scope, window)
        return None if value is None else float(not math.isfinite(value))

    def progress(scope: Scope, window: Window) -> float | None:
        return running(scope)[0]

    def idle(scope: Scope, window: Window) -> float | None:
        _, since, _ = running(scope)
        return None if since is None else (window.end - since.astimezone(UTC)).total_seconds()

    def queued(scope: Scope, window: Window) -> float | None:
        return float(len(metadata.list_runs([RunStatus.QUEUED])))

    run = {ScopeKind.RUN.value}
    registry.register("run_loss", run, loss, "the run's latest loss (loss or train_loss)")
    registry.register("run_loss_nonfinite", run, loss_nonfinite, "1 when the loss is NaN/inf")
    registry.register("run_progress", run, progress, "percent of the run's steps done")
    registry.register("run_idle_seconds", run, idle, "seconds since the run last progressed")
    registry.register("queued_runs", {ScopeKind.PLATFORM.value}, queued, "runs waiting to run")


def register_serving(
    registry: MetricRegistry, metadata: MetadataStore, source: HistorySource | None
) -> None:
    """Latency, error rate and throughput of a model or a deployment over the window."""

    def summary(scope: Scope, window: Window) -> PerformanceSummary | None:
        if source is None:
            return None
        if scope.kind is ScopeKind.DEPLOYMENT:
            model = metadata.get_deployment(scope.target).model
            figures = source.performance(model, window, deployment=scope.target)
        else:
            figures = source.performance(scope.target, window)
        return figures

    def reader(pick: Callable[[PerformanceSummary], float | None], needs_traffic: bool) -> Reader:
        def read(scope: Scope, window: Window) -> float | None:
            figures = summary(scope, window)
            if figures is None or (needs_traffic and figures.requests == 0):
                return None  # no latency or error rate without requests
            return pick(figures)

        return read

    kinds = {ScopeKind.MODEL.value, ScopeKind.DEPLOYMENT.value}
    figures: list[tuple[str, Callable[[PerformanceSummary], float | None], bool, str]] = [
        ("p50_latency_ms", lambda f: f.p50_ms, True, "median latency over the window"),
        ("p95_latency_ms", lambda f: f.p95_ms, True, "95th percentile latency"),
        ("p99_latency_ms", lambda f: f.p99_ms, True, "99th percentile latency"),
        ("error_rate", lambda f: f.error_rate, True, "errors / requests, 0 to 1"),
        ("requests_per_second", lambda f: f.throughput_rps, False, "requests per second"),
    ]
    for name, pick, needs_traffic, text in figures:
        registry.register(name, kinds, reader(pick, needs_traffic), text)
