"""Finishing runs whose worker exited, off the slot.

When a worker exits, what happened is decided at once: over its memory limit,
cancelled, a trainer's own error (failed), or a crash (retried after a backoff).
Each of those is one write. A worker that left a result makes its run `finishing`
and hands it to the finisher; the slot is free before the result registers, so
the next queued run starts while this one's model version is stored.

The finisher holds a finishing run by the same lease as a running one. If the
server dies while a run is finishing, another scheduler (or this server after a
restart) takes the run over once its lease expires and finishes it, asking first
whether the dead one had already registered its version, so each run registers
exactly one version.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelhub.domain.alert_rules import NAN_LOSS, Firing
from modelhub.domain.runs import Run, RunStatus
from modelhub.errors import ModelhubError
from modelhub.stores.metadata.base import MetadataStore
from modelhub.training.scheduler.admission import backoff_delay
from modelhub.training.scheduler.checkpoints import CheckpointUpload
from modelhub.training.scheduler.moves import RunMoves, now
from modelhub.training.scheduler.watching import Active
from modelhub.training.worker import FAILED

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # after an unexpected error while finishing (the database away)

ResultHook = Callable[[Run, Path, dict[str, float]], int | None]  # None: none registered
RegisteredHook = Callable[[Run], int | None]  # the version a run registered already, if any


@dataclass
class Pending:
    run_id: int
    taken_over: bool  # from a scheduler that died: it may have registered already
    not_before: float = 0.0
    checkpoints_seen: dict[str, float] = field(default_factory=dict)  # uploaded already


class Finisher:
    def __init__(
        self,
        metadata: MetadataStore,
        moves: RunMoves,
        checkpoints: CheckpointUpload,
        runs_dir: Path,
        backoff_seconds: float,
        on_result: ResultHook,
        registered: RegisteredHook,
    ) -> None:
        self.metadata = metadata
        self.moves = moves
        self.checkpoints = checkpoints
        self.runs_dir = runs_dir
        self.backoff_seconds = backoff_seconds
        self.on_result = on_result
        self.registered = registered
        self._pending: deque[Pending] = deque()
        self._ready = threading.Condition()
        self._working = 0

    # -- the moment the worker exits (on the scheduler's loop) ---------------------

    def worker_exited(self, active: Active, code: int) -> None:
        """Decide what the exit means. The attempt's newest checkpoints are uploaded
        here, except for a result: the finisher uploads those, off the slot."""
        run = self.metadata.get_run(active.run.id)
        result = read_result(active.run_dir)
        succeeded = code == 0 and "metrics" in result
        if active.memory_exceeded is not None or run.cancel_requested or not succeeded:
            self.checkpoints.collect(run.id, active.run_dir, active.checkpoints_seen)
        if active.memory_exceeded is not None:
            limit = run.resources.memory
            self.moves.fail(
                run.id,
                "invalid_input",
                f"used {active.memory_exceeded / 2**20:.0f} MiB, over its memory limit of "
                f"{limit / 2**20:.0f} MiB; raise resources.memory",
            )
        elif run.cancel_requested:
            self.moves.end(run.id, RunStatus.CANCELLED, reason="cancelled by request")
        elif succeeded:
            if self.moves.finishing(run.id):
                self.submit(run.id, seen=active.checkpoints_seen)
        elif code == FAILED and "error" in result:
            error = result["error"]
            self.moves.fail(run.id, str(error.get("code", "invalid_input")), str(error["message"]))
            if error.get("code") == "training_diverged":
                firing = Firing(NAN_LOSS.name, NAN_LOSS.severity, str(error["message"]))
                self.metadata.record_progress(run.id, {}, events=[self.moves.alert(run.id, firing)])
        else:
            self._crashed(run, code, active.run_dir)

    def _crashed(self, run: Run, code: int, run_dir: Path) -> None:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        last = _last_log_line(run_dir / "logs.txt")
        detail = f"attempt {run.attempts} crashed ({how})" + (f": {last}" if last else "")
        if run.attempts >= run.max_attempts:
            self.moves.fail(run.id, "unavailable", f"{detail}; no attempts left")
            return
        self.moves.retry_later(run.id, detail, backoff_delay(self.backoff_seconds, run.attempts))

    # -- the queue of finishing runs ----------------------------------------------

    def submit(
        self,
        run_id: int,
        taken_over: bool = False,
        delay: float = 0.0,
        seen: dict[str, float] | None = None,
    ) -> None:
        item = Pending(run_id, taken_over, time.monotonic() + delay, seen or {})
        with self._ready:
            self._pending.append(item)
            self._ready.notify()

    def take_over_expired(self) -> list[int]:
        """Claim the finishing runs whose scheduler stopped renewing their lease."""
        claimed = self.metadata.claim_expired_finishing(
            self.moves.owner, now(), self.moves.lease_until()
        )
        for run_id in claimed:
            self.submit(run_id, taken_over=True)
        return claimed

    def finish_pending(self) -> int:
        """Finish every run ready now, in this thread; how many."""
        done = 0
        while (item := self._take(wait=0.0)) is not None:
            self._finish_safely(item)
            done += 1
        return done

    def serve(self, stop: threading.Event) -> None:
        """The finisher thread: finish runs as they come until `stop`."""
        while not stop.is_set():
            item = self._take(wait=0.2)
            if item is not None:
                self._finish_safely(item)

    def holds_any(self) -> bool:
        """Whether runs wait here or one is being finished: their leases need renewing."""
        with self._ready:
            return bool(self._pending) or self._working > 0

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()

    def _take(self, wait: float) -> Pending | None:
        with self._ready:
            for _ in range(2):
                current = time.monotonic()
                for item in self._pending:
                    if item.not_before <= current:
                        self._pending.remove(item)
                        self._working += 1
                        return item
                if wait <= 0:
                    return None
                soonest = min((p.not_before - current for p in self._pending), default=wait)
                self._ready.wait(min(wait, max(soonest, 0.0)))
            return None

    def _finish_safely(self, item: Pending) -> None:
        try:
            self._finish(item)
        except Exception:  # the run stays finishing, under our lease: try again later
            log.exception("finishing run %s failed; retrying in %g s", item.run_id, RETRY_SECONDS)
            # The failed try may have registered the version already: look it up, as for a
            # run taken over, rather than register it again on every retry.
            self.submit(item.run_id, True, RETRY_SECONDS, item.checkpoints_seen)
        finally:
            with self._ready:
                self._working -= 1

    # -- registering the result (off the slot) ------------------------------------

    def _finish(self, item: Pending) -> None:
        run = self.metadata.get_run(item.run_id)
        if run.status is not RunStatus.FINISHING or run.owner != self.moves.owner:
            return  # finished, or taken over by another scheduler, meanwhile
        run_dir = self.runs_dir / str(run.id)
        result = read_result(run_dir)
        if "metrics" not in result:  # its folder stayed on the host that ran it
            reason = "its result is not on this host; training again from its newest checkpoint"
            self.moves.requeue(run.id, reason, expected=RunStatus.FINISHING)
            return
        # An attempt resumed at its last step trains none: its mean loss is NaN, which
        # PostgreSQL's JSON refuses (the run would stay finishing). Keep finite figures.
        metrics = {k: float(v) for k, v in result["metrics"].items() if math.isfinite(float(v))}
        output = Path(result.get("output_dir") or run_dir / "output")
        if not self.moves.still_held(run.id):
            return
        self.checkpoints.collect(run.id, run_dir, item.checkpoints_seen)
        try:
            version = self.registered(run) if item.taken_over else None
            if version is None:
                version = self.on_result(run, output, metrics)
        except ModelhubError as exc:
            self.moves.fail(run.id, exc.code, f"registering the result failed: {exc.message}")
            return
        self.moves.end(
            run.id,
            RunStatus.COMPLETED,
            result_version=version,
            progress=100.0,
            eta_seconds=0.0,
            metrics={**run.metrics, **metrics},
        )


def read_result(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _last_log_line(path: Path, limit: int = 300) -> str:
    try:
        with open(path, "rb") as source:
            source.seek(max(0, path.stat().st_size - 4096))
            lines = source.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:limit] if lines and not lines[-1].startswith("--- attempt") else ""
