"""The plan's success figures over the stores: training per engine and for the platform,
and deployment uptime (formulas in monitoring/figures.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from modelhub.domain.cost import DeploymentUptime, PlatformFigures, ReplicaSpan
from modelhub.domain.monitoring import Window
from modelhub.domain.runs import Run
from modelhub.monitoring.figures import RunFacts, training_figures, uptime
from modelhub.stores.metadata.base import MetadataStore

DEFAULT_ENGINE = "local"


def engine_of(run: Run) -> str:
    """The executor kind that ran the run (the local worker processes unless its spec
    names another)."""
    named = run.spec.get("executor")
    return named if isinstance(named, str) and named else DEFAULT_ENGINE


class FiguresReader:
    def __init__(
        self,
        metadata: MetadataStore,
        cpus: Callable[[], float],
        clock: Callable[[], datetime],
        cache_seconds: float = 0.0,
    ) -> None:
        self.metadata = metadata
        self.cpus = cpus
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, float, PlatformFigures] | None = None
        self._lock = threading.Lock()

    def figures(self, window: Window) -> PlatformFigures:
        now = self.clock()
        runs = self.metadata.list_runs()
        usage = self.metadata.run_usage([r.id for r in runs])
        facts: dict[str, list[RunFacts]] = {}
        for run in runs:
            facts.setdefault(engine_of(run), []).append(
                RunFacts(
                    engine=engine_of(run),
                    status=run.status.value,
                    queued_at=run.queued_at,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    cpu_seconds=usage[run.id].cpu_seconds if run.id in usage else 0.0,
                )
            )
        cpus = self.cpus()
        engines = [
            training_figures(engine, found, cpus, window, now)
            for engine, found in sorted(facts.items())
        ]
        everything = [fact for found in facts.values() for fact in found]
        spans = self.metadata.replica_spans(window.start, window.end)
        by_deployment: dict[str, list[ReplicaSpan]] = {}
        for span in spans:
            by_deployment.setdefault(span.deployment, []).append(span)
        deployments: list[DeploymentUptime] = [
            uptime(name, found, window, now) for name, found in sorted(by_deployment.items())
        ]
        observed = sum(d.seconds_observed for d in deployments)
        up = sum(d.seconds_up for d in deployments)
        return PlatformFigures(
            window_start=window.start,
            window_end=window.end,
            training=engines,
            platform=training_figures("all", everything, cpus, window, now),
            deployments=deployments,
            uptime_ratio=up / observed if observed > 0 else None,
        )

    def cached(self, length_seconds: float) -> PlatformFigures:
        """The figures of the last `length_seconds`, reused for `cache_seconds` (/metrics)."""
        with self._lock:
            current = time.monotonic()
            if (
                self._cached is not None
                and self._cached[1] == length_seconds
                and current - self._cached[0] < self.cache_seconds
            ):
                return self._cached[2]
            found = self.figures(Window.last(timedelta(seconds=length_seconds), self.clock()))
            self._cached = (current, length_seconds, found)
            return found
