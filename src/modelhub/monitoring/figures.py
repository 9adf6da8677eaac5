"""The plan's success figures, computed from run timestamps, measured use and replica spans.

- success ratio: completed / (completed + failed) over runs that finished in the window
  (cancelled runs are a person's choice, not a failure of the platform: not counted);
- queue wait: started_at - queued_at of runs that started in the window (median, p95);
- average job time: finished_at - started_at of runs that finished in the window;
- utilisation: CPU-seconds used by runs / CPU-seconds available while runs were queued
  or running (the training capacity's cores x the time at least one run was queued or
  running); a run's measured CPU-seconds are spread evenly over its running time, so a
  window that holds half its running time holds half its CPU-seconds;
- uptime: time a deployment had at least one ready replica / time it had any replica.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from modelhub.domain.cost import DeploymentUptime, EngineFigures, ReplicaSpan
from modelhub.domain.monitoring import Window
from modelhub.monitoring.pricing import overlap_seconds, union_seconds


@dataclass(frozen=True)
class RunFacts:
    """What the figures need of one run."""

    engine: str
    status: str
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cpu_seconds: float


def _inside(at: datetime | None, window: Window) -> bool:
    return at is not None and window.start <= at < window.end


def training_figures(
    engine: str, runs: Sequence[RunFacts], cpus: float, window: Window, now: datetime
) -> EngineFigures:
    finished = [r for r in runs if _inside(r.finished_at, window)]
    completed = sum(1 for r in finished if r.status == "completed")
    failed = sum(1 for r in finished if r.status == "failed")
    waits = [
        (r.started_at - r.queued_at).total_seconds()
        for r in runs
        if r.queued_at is not None and r.started_at is not None and _inside(r.started_at, window)
    ]
    jobs = [
        (r.finished_at - r.started_at).total_seconds()
        for r in finished
        if r.started_at is not None and r.finished_at is not None
    ]
    busy = [
        (r.queued_at or r.started_at, r.finished_at or now)
        for r in runs
        if (r.queued_at or r.started_at) is not None
    ]
    available = cpus * union_seconds(((a, b) for a, b in busy if a is not None), window)
    used = sum(_cpu_in_window(r, window, now) for r in runs)
    return EngineFigures(
        engine=engine,
        runs_finished=completed + failed,
        runs_completed=completed,
        runs_failed=failed,
        success_ratio=completed / (completed + failed) if completed + failed else None,
        queue_wait_median_seconds=float(np.median(waits)) if waits else None,
        queue_wait_p95_seconds=float(np.percentile(waits, 95)) if waits else None,
        job_seconds_avg=float(np.mean(jobs)) if jobs else None,
        cpu_seconds_used=used,
        cpu_seconds_available=available,
        utilisation_ratio=min(1.0, used / available) if available > 0 else None,
    )


def _cpu_in_window(run: RunFacts, window: Window, now: datetime) -> float:
    if run.started_at is None or run.cpu_seconds <= 0:
        return 0.0
    end = run.finished_at or now
    length = (end - run.started_at).total_seconds()
    if length <= 0:
        return run.cpu_seconds if _inside(run.started_at, window) else 0.0
    return run.cpu_seconds * overlap_seconds(run.started_at, end, window) / length


def uptime(
    deployment: str, spans: Iterable[ReplicaSpan], window: Window, now: datetime
) -> DeploymentUptime:
    spans = list(spans)
    observed = union_seconds(((s.started_at, s.ended_at or now) for s in spans), window)
    up = union_seconds(((s.started_at, s.ended_at or now) for s in spans if s.ready), window)
    return DeploymentUptime(
        deployment=deployment,
        seconds_observed=observed,
        seconds_up=up,
        uptime_ratio=up / observed if observed > 0 else None,
    )


def replica_seconds(spans: Iterable[ReplicaSpan], window: Window, now: datetime) -> float:
    """Replica-seconds in `window`: each replica counts from its start to its end, ready
    or not (a starting replica holds its resources too)."""
    return sum(overlap_seconds(s.started_at, s.ended_at or now, window) for s in spans)
