"""The training engines' record: what `modelhub engines list` shows (the plan's engine).

Figures come from the runs an engine ran (the newest attempt's engine is on the run):
average job time and success rate over its recent finished runs, queue wait from a
run's creation to its first start.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from modelhub.domain.records import Record
from modelhub.domain.runs import Run, RunStatus

EngineKind = Literal["local", "ray", "plugin"]  # plugin: an installed executor plugin
EngineStatus = Literal["online", "offline"]


class EngineCapacity(Record):
    cpus: float
    gpus: int
    memory: int = Field(description="bytes")
    nodes: int = 1


class EngineRecord(Record):
    name: str
    kind: EngineKind
    status: EngineStatus
    reason: str | None = Field(default=None, description="why the engine is offline")
    address: str | None = Field(default=None, description="the Ray cluster's address")
    capacity: EngineCapacity
    free: EngineCapacity
    queued: int = Field(description="queued runs that would start here")
    running: int
    utilisation: float = Field(description="0-1: the largest share of cpus, gpus or memory held")
    average_job_seconds: float | None = Field(description="recent completed runs, start to end")
    success_rate: float | None = Field(description="recent finished runs: completed / all")
    queue_wait_seconds: float | None = Field(description="recent runs: created to first start")


class EngineFigures(Record):
    average_job_seconds: float | None = None
    success_rate: float | None = None
    queue_wait_seconds: float | None = None


def engine_figures(finished: Iterable[Run]) -> EngineFigures:
    """Average job time, success rate and queue wait of an engine's `finished` runs.

    A cancelled run counts for neither success nor failure: someone chose to end it.
    """
    finished = list(finished)
    done = [r for r in finished if r.status in (RunStatus.COMPLETED, RunStatus.FAILED)]
    durations = [
        (r.finished_at - r.started_at).total_seconds()
        for r in done
        if r.status is RunStatus.COMPLETED and r.started_at and r.finished_at
    ]
    waits = [(r.started_at - r.created_at).total_seconds() for r in finished if r.started_at]
    completed = sum(1 for r in done if r.status is RunStatus.COMPLETED)
    return EngineFigures(
        average_job_seconds=statistics.fmean(durations) if durations else None,
        success_rate=completed / len(done) if done else None,
        queue_wait_seconds=statistics.median(waits) if waits else None,
    )


def utilisation(capacity: EngineCapacity, free: EngineCapacity) -> float:
    """The largest share of the engine's cpus, gpus or memory that running attempts hold."""
    shares = [
        (total - left) / total
        for total, left in (
            (capacity.cpus, free.cpus),
            (capacity.gpus, free.gpus),
            (capacity.memory, free.memory),
        )
        if total > 0
    ]
    return round(max(0.0, min(1.0, max(shares, default=0.0))), 4)
