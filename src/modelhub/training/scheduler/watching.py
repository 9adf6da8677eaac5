"""Watching running attempts: the files a worker writes become telemetry and alerts.

The worker appends metric lines to `metrics.jsonl`, rewrites `progress.json` and
writes checkpoints; each look turns what is new into one store update (metrics,
progress, ETA, events), runs the training alert rules over it, and enforces the
memory limit, the stall warning and a requested cancel. An update the store could
not take (the database restarting) stays on the attempt and goes with the next look:
the file offsets have moved past what it holds, so dropping it would lose it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelhub.domain.alert_rules import LOSS_METRICS, LOSS_RULES, RunWindow, stalled
from modelhub.domain.cost import AttemptUsage
from modelhub.domain.runs import MetricPoint, Run
from modelhub.stores.metadata.base import MetadataStore, Progress
from modelhub.training.executor import AttemptHandle
from modelhub.training.scheduler.checkpoints import CheckpointUpload
from modelhub.training.scheduler.moves import Event, RunMoves, now
from modelhub.training.usage import read_usage

CANCEL_GRACE_SECONDS = 10.0


@dataclass
class Active:
    """A running attempt as the scheduler follows it."""

    run: Run
    handle: AttemptHandle
    run_dir: Path
    engine: str
    gpus: list[int]
    started: float
    start_step: int
    metrics_offset: int = 0
    progress_mtime: float = 0.0
    last_change: float = field(default_factory=time.monotonic)
    checkpoints_seen: dict[str, float] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    window: RunWindow = field(default_factory=RunWindow)
    cancel_deadline: float | None = None
    memory_exceeded: int | None = None
    stalled: bool = False
    cpu_baseline: float = 0.0  # what the (warm) worker had used before this attempt
    cpu_seconds: float = 0.0  # the attempt's CPU-seconds, as last sampled
    unrecorded: Progress | None = None  # observed, not yet written: sent with the next look


class Watcher:
    def __init__(
        self,
        metadata: MetadataStore,
        checkpoints: CheckpointUpload,
        moves: RunMoves,
        stall_seconds: float,
    ) -> None:
        self.metadata = metadata
        self.checkpoints = checkpoints
        self.moves = moves
        self.stall_rule = stalled(stall_seconds)

    def watch(self, active: Active, cancel_requested: bool) -> Progress | None:
        """Telemetry, memory limit, stall and cancel checks for one running attempt.

        Returns the update to write (with what earlier looks could not write); the
        caller calls `recorded` once the store took it."""
        self.observe(active)
        events: list[Event] = []
        run_id = active.run.id
        used = active.handle.memory_bytes()
        if used > active.run.resources.memory and active.handle.poll() is None:
            active.memory_exceeded = used
            active.handle.kill()
            return active.unrecorded
        current = time.monotonic()
        if not active.stalled:
            active.window.idle_seconds = current - active.last_change
            firing = self.stall_rule.evaluate(active.window)
            if firing is not None:
                active.stalled = True
                events.append(self.moves.alert(run_id, firing))
        if active.cancel_deadline is None:
            if cancel_requested:
                (active.run_dir / "STOP").touch()
                active.cancel_deadline = current + CANCEL_GRACE_SECONDS
                events.append(("status", {"status": "cancelling"}))
        elif current > active.cancel_deadline and active.handle.poll() is None:
            active.handle.kill()
        if events:
            _keep(active, Progress(run_id, {}, (), events))
        return active.unrecorded

    @staticmethod
    def recorded(active: Active) -> None:
        """The store took the update `watch` or `observe` returned for `active`."""
        active.unrecorded = None

    def sampled(self, active: Active, cpu_seconds: float) -> None:
        """Store the attempt's use as the resource samples measured it (the worker
        tree's cumulative CPU-seconds, less what the worker had used before): the
        figure that stays when the attempt is killed before it can report its own."""
        active.cpu_seconds = max(active.cpu_seconds, cpu_seconds - active.cpu_baseline)
        self.record_usage(active, final=False)

    def record_usage(self, active: Active, final: bool) -> None:
        """Store the attempt's use; at its end the worker's own figure, where it wrote one."""
        reported = read_usage(active.run_dir) if final else None
        wall = time.monotonic() - active.started
        self.metadata.record_attempt_usage(
            AttemptUsage(
                run_id=active.run.id,
                attempt=max(1, active.run.attempts),
                cpu_seconds=reported if reported is not None else active.cpu_seconds,
                gpu_seconds=len(active.gpus) * wall,
                wall_seconds=wall,
                final=final,
            )
        )

    def flush(self, active: Active, checkpoints: bool = True) -> None:
        """Record what the worker wrote since the last look (its attempt ended).

        Without `checkpoints`, the newest checkpoints are left for the caller to
        upload (the finisher does, off the slot)."""
        progress = self.observe(active, checkpoints)
        if progress is not None:
            self.metadata.record_progress_batch([progress])
            self.recorded(active)

    def observe(self, active: Active, checkpoints: bool = True) -> Progress | None:
        """What the worker wrote since the last look, and what earlier looks could not
        write, as one store update (not yet written: kept on `active` until `recorded`)."""
        points = new_points(active)
        if points:
            for point in points:
                active.latest[point.name] = point.value
            dumped = [p.model_dump(mode="json", exclude={"at"}) for p in points]
            events: list[Event] = [("metrics", {"points": dumped})]
            events += self._loss_alerts(active, points)
            _keep(active, Progress(active.run.id, {"metrics": dict(active.latest)}, points, events))
        progress = self._new_progress(active)
        if progress is not None:
            values = progress | {"last_progress_at": now()}
            _keep(active, Progress(active.run.id, values, (), [("progress", progress)]))
        if checkpoints:
            self.checkpoints.collect(active.run.id, active.run_dir, active.checkpoints_seen)
        return active.unrecorded

    def _loss_alerts(self, active: Active, points: list[MetricPoint]) -> list[Event]:
        events = []
        for point in points:
            if point.name not in LOSS_METRICS:
                continue
            active.window.add(point)
            for rule in LOSS_RULES:
                firing = rule.evaluate(active.window)
                if firing is not None:
                    events.append(self.moves.alert(active.run.id, firing))
        return events

    def _new_progress(self, active: Active) -> dict[str, Any] | None:
        path = active.run_dir / "progress.json"
        try:
            mtime = path.stat().st_mtime
            if mtime == active.progress_mtime:
                return None
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        active.progress_mtime = mtime
        step, total = int(state.get("step", 0)), state.get("total_steps")
        current = time.monotonic()
        active.last_change = current
        if active.stalled:
            active.stalled = False
            self.metadata.resolve_alerts(f"run:{active.run.id}", "stalled")
        values: dict[str, Any] = {
            "step": step,
            "epoch": state.get("epoch"),
            "total_steps": total,
        }
        if total:
            values["progress"] = round(min(99.9, 100.0 * step / total), 2)
            done = step - active.start_step
            elapsed = current - active.started
            if done > 0 and elapsed > 0:
                values["eta_seconds"] = round(max(total - step, 0) * elapsed / done, 1)
        return values


def _keep(active: Active, update: Progress) -> None:
    """Add `update` to what waits to be written for `active` (newer values win)."""
    old = active.unrecorded
    if old is None:
        active.unrecorded = update
        return
    active.unrecorded = Progress(
        update.run_id,
        old.values | update.values,
        [*old.points, *update.points],
        [*old.events, *update.events],
    )


def new_points(active: Active) -> list[MetricPoint]:
    """Complete metric lines appended since the last read (a half-written one waits)."""
    path = active.run_dir / "metrics.jsonl"
    try:
        with open(path, "rb") as source:
            source.seek(active.metrics_offset)
            chunk = source.read()
    except FileNotFoundError:
        return []
    complete = chunk[: chunk.rfind(b"\n") + 1]
    active.metrics_offset += len(complete)
    points = []
    for line in complete.splitlines():
        try:
            item = json.loads(line)
            points.append(
                MetricPoint(
                    name=str(item["name"]),
                    step=int(item["step"]),
                    value=float(item["value"]),
                    at=datetime.fromtimestamp(float(item.get("at", time.time())), UTC),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a trainer's malformed line is not worth failing the run
    return points
