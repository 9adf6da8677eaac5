"""The training scheduler: admits queued runs, watches them, retries and finishes them.

One thread, one loop (`tick`), all state that matters in the metadata store, so a
restarted scheduler picks up where the last one stopped:

- admission: queued runs in order of effective priority (level plus aging, FIFO
  within a level), started while their declared cpus, memory and gpus fit what is
  free on this host and fewer than `max_running` run;
- watching: the worker's metrics, progress and checkpoint files in the run folder
  become metrics, progress, ETA, events and alerts in the store; checkpoints are
  copied into the artifact store; the memory limit is enforced;
- finishing: success hands the output to `on_result` (the training service
  registers it); a crash is retried with exponential backoff, resuming from the
  newest checkpoint; a trainer's own error fails the run with its reason.

Ownership is a lease. Each scheduler start has its own owner id (host, pid and a
random instance id, so a restarted server on the same host with a recycled or
not-yet-reaped pid is still someone else). Claiming a run sets its owner and a lease
expiry; every `heartbeat_seconds` the scheduler extends the lease of the runs it
holds and sweeps for running runs whose lease ran out (`recover`), which it queues
again with a compare-and-set, so of several servers on one database exactly one
takes each. Workers die with the scheduler's process (PDEATHSIG), so after a kill -9
of the server nothing trains unseen, and its runs resume from their newest
checkpoint within `lease_seconds`, whatever the timing of the restart. A scheduler
that finds it lost a lease (its heartbeat stalled past the expiry) kills its worker
and leaves the run to its new owner; every move it makes on a run requires that it
still holds it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelhub.domain.runs import (
    Checkpoint,
    MetricPoint,
    QueuedRun,
    Run,
    RunResources,
    RunStatus,
    effective_priority,
)
from modelhub.errors import IllegalTransition, ModelhubError
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import MetadataStore, Progress
from modelhub.training.executor import Attempt, AttemptHandle, Executor
from modelhub.training.worker import FAILED

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 10.0
LOSS_METRICS = ("loss", "train_loss")
DIVERGENCE_FACTOR = 4.0  # a loss this many times its best so far is diverging
DIVERGENCE_MIN_POINTS = 5

ResultHook = Callable[[Run, Path, dict[str, float]], int]
PrepareHook = Callable[[Run, Path], dict[str, Any]]


@dataclass(frozen=True)
class Capacity:
    cpus: float
    memory: int
    gpus: int

    def fits(self, need: RunResources) -> bool:
        return need.cpus <= self.cpus and need.memory <= self.memory and need.gpus <= self.gpus


def host_capacity(cpus: float | None, memory: int | None, gpus: int | None) -> Capacity:
    """What this host offers training, each part overridable by settings."""
    if gpus is None:
        gpus = count_gpus()
    return Capacity(
        cpus=cpus if cpus is not None else float(os.cpu_count() or 1),
        memory=memory
        if memory is not None
        else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        gpus=gpus,
    )


def count_gpus() -> int:
    """NVIDIA GPUs the driver shows, read without importing torch (server start-up stays fast)."""
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        pass
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.splitlines() if line.startswith("GPU "))


@dataclass
class SchedulerConfig:
    capacity: Capacity
    max_running: int = 8
    backoff_seconds: float = 2.0
    aging_seconds: float = 300.0
    stall_seconds: float = 600.0
    tick_seconds: float = 0.1
    watch_seconds: float = 0.25  # how often running attempts' files are read
    lease_seconds: float = 10.0  # a run whose owner stops renewing is requeued after this
    heartbeat_seconds: float = 2.0  # how often leases are renewed and expired ones swept


@dataclass
class Active:
    """A running attempt as the scheduler follows it."""

    run: Run
    handle: AttemptHandle
    run_dir: Path
    gpus: list[int]
    started: float
    start_step: int
    metrics_offset: int = 0
    progress_mtime: float = 0.0
    last_change: float = field(default_factory=time.monotonic)
    checkpoints_seen: dict[str, float] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    best_loss: float = math.inf
    loss_points: int = 0
    cancel_deadline: float | None = None
    memory_exceeded: int | None = None
    stalled: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        executor: Executor,
        runs_dir: Path,
        config: SchedulerConfig,
        prepare: PrepareHook,
        on_result: ResultHook,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.executor = executor
        self.runs_dir = runs_dir
        self.config = config
        self.prepare = prepare
        self.on_result = on_result
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self.active: dict[int, Active] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_watch = 0.0
        self._next_heartbeat = 0.0
        self._alerted: set[int] = set()  # runs this scheduler raised an alert on

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="modelhub-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop scheduling; running attempts are asked to checkpoint, then requeued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        for active in self.active.values():
            (active.run_dir / "STOP").touch()
        deadline = time.monotonic() + grace_seconds
        while any(a.handle.poll() is None for a in self.active.values()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for run_id, active in list(self.active.items()):
            active.handle.kill()
            self._flush(active)
            (active.run_dir / "STOP").unlink(missing_ok=True)
            self._requeue(run_id, "interrupted: the server stopped")
        self.active.clear()
        self.executor.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("scheduler tick failed")
            self._wake.wait(self.config.tick_seconds)
            self._wake.clear()

    def recover(self) -> list[int]:
        """Requeue running runs whose lease expired: their scheduler is gone or stuck."""
        reason = "interrupted: the scheduler that ran it stopped renewing its lease"
        recovered = self.metadata.requeue_expired(_now(), reason)
        for run_id in recovered:
            (self.run_dir(run_id) / "STOP").unlink(missing_ok=True)
            self.metadata.resolve_alerts(f"run:{run_id}", "stalled")
        return recovered

    def heartbeat(self) -> list[int]:
        """Renew the leases of the runs this scheduler runs, then sweep expired ones.

        A run whose lease another scheduler took over (this one stalled past the
        expiry) is no longer ours: its worker is killed and the run left alone.
        Returns the ids of runs requeued by the sweep."""
        if self.active:
            held = self.metadata.renew_leases(self.owner, self._lease_until())
            for run_id in [r for r in self.active if r not in held]:
                log.warning("run %s: lease lost to another scheduler; stopping its worker", run_id)
                self.active.pop(run_id).handle.kill()
        return self.recover()

    def _lease_until(self) -> datetime:
        return _now() + timedelta(seconds=self.config.lease_seconds)

    def _requeue(self, run_id: int, reason: str) -> bool:
        try:
            self.metadata.move_run(
                run_id,
                [RunStatus.RUNNING],
                event={"status": RunStatus.QUEUED.value, "reason": reason},
                held_by=self.owner,
                status=RunStatus.QUEUED,
                queued_at=_now(),
                owner=None,
                lease_expires_at=None,
                worker_pid=None,
            )
        except IllegalTransition:
            return False
        return True

    def run_dir(self, run_id: int) -> Path:
        return self.runs_dir / str(run_id)

    # -- one pass ---------------------------------------------------------------

    def tick(self) -> None:
        """Finish ended attempts and fill their slots first; then look at the others."""
        for run_id, active in list(self.active.items()):
            code = active.handle.poll()
            if code is not None:
                self._flush(active)
                del self.active[run_id]
                self._finish(active, code)
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_seconds
            self.heartbeat()
        self._release_backoffs()
        self._admit()
        now = time.monotonic()
        if self.active and now >= self._next_watch:
            self._next_watch = now + self.config.watch_seconds
            cancelling = self._cancel_requested()
            batch = [
                self._watch(active, run_id in cancelling) for run_id, active in self.active.items()
            ]
            self.metadata.record_progress_batch([item for item in batch if item is not None])

    def _cancel_requested(self) -> set[int]:
        """Running runs someone asked to cancel: one query a tick, not one per run."""
        return {r.id for r in self.metadata.list_runs([RunStatus.RUNNING]) if r.cancel_requested}

    def _release_backoffs(self) -> None:
        now = _now()
        for run in self.metadata.list_runs([RunStatus.PENDING]):
            if run.next_attempt_at is None or run.next_attempt_at <= now:
                try:
                    self.metadata.move_run(
                        run.id,
                        [RunStatus.PENDING],
                        event={"status": RunStatus.QUEUED.value, "reason": "retrying"},
                        status=RunStatus.QUEUED,
                        queued_at=now,
                    )
                except IllegalTransition:
                    continue

    def free(self) -> Capacity:
        used = [a.run.resources for a in self.active.values()]
        total = self.config.capacity
        return Capacity(
            cpus=total.cpus - sum(r.cpus for r in used),
            memory=total.memory - sum(r.memory for r in used),
            gpus=total.gpus - sum(r.gpus for r in used),
        )

    def queue(self) -> list[QueuedRun]:
        """Queued runs, first to start first."""
        now = _now()

        def order(run: QueuedRun) -> tuple[float, datetime, int]:
            waited = (now - (run.queued_at or run.created_at)).total_seconds()
            level = effective_priority(run.priority, waited, self.config.aging_seconds)
            return (-level, run.queued_at or run.created_at, run.id)

        return sorted(self.metadata.queued_runs(), key=order)

    def _admit(self) -> None:
        if len(self.active) >= self.config.max_running:
            return
        for run in self.queue():
            if len(self.active) >= self.config.max_running:
                return
            if self.free().fits(run.resources):
                self._launch(run)

    def _free_gpus(self, count: int) -> list[int]:
        taken = {gpu for active in self.active.values() for gpu in active.gpus}
        return [g for g in range(self.config.capacity.gpus) if g not in taken][:count]

    def _launch(self, queued: QueuedRun) -> None:
        number = queued.attempts + 1
        try:
            run = self.metadata.move_run(
                queued.id,
                [RunStatus.QUEUED],
                event={"status": RunStatus.RUNNING.value, "attempt": number},
                status=RunStatus.RUNNING,
                attempts=number,
                started_at=queued.started_at or _now(),
                owner=self.owner,
                lease_expires_at=self._lease_until(),
                cancel_requested=False,
                error=None,
                error_code=None,
            )
        except IllegalTransition:
            return  # cancelled, or claimed by another scheduler, since we listed it
        run_dir = self.run_dir(run.id)
        gpus = self._free_gpus(run.resources.gpus)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            for stale in ("STOP", "result.json"):
                (run_dir / stale).unlink(missing_ok=True)
            self._restore_checkpoints(run, run_dir)
            job = self.prepare(run, run_dir)
            job |= {"gpus": gpus, "threads": max(1, int(run.resources.cpus))}
            job_file = run_dir / "job.json"
            tmp = job_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(job, indent=2))
            tmp.replace(job_file)
            log_file = run_dir / "logs.txt"
            if run.id not in self.metadata.renew_leases(self.owner, self._lease_until()):
                return  # preparing outlasted the lease and another scheduler took the run
            with open(log_file, "a") as out:
                began = f"{_now():%Y-%m-%d %H:%M:%S}Z"
                out.write(f"--- attempt {number} of {run.max_attempts} at {began} ---\n")
            handle = self.executor.start(Attempt(run.id, number, job_file, log_file))
        except ModelhubError as exc:
            self._fail(run.id, exc.code, exc.message)
            return
        except OSError as exc:
            self._fail(run.id, "unavailable", f"cannot start the attempt: {exc}")
            return
        self.metadata.record_progress(run.id, {"worker_pid": handle.pid})
        active = Active(
            run=run,
            handle=handle,
            run_dir=run_dir,
            gpus=gpus,
            started=time.monotonic(),
            start_step=run.step,
        )
        # The file keeps earlier attempts' lines: those past the last step on record
        # were never read (their scheduler died first) and are recorded now, once.
        unread = [p for p in self._new_points(active) if p.step > run.step]
        if unread:
            self.metadata.record_progress(run.id, {}, unread)
        active.checkpoints_seen = {
            p.name: p.stat().st_mtime for p in (run_dir / "checkpoints").glob("*.pt")
        }
        self.active[run.id] = active

    def _restore_checkpoints(self, run: Run, run_dir: Path) -> None:
        """Bring the run's stored checkpoints back when its folder lost them (another host)."""
        folder = run_dir / "checkpoints"
        if any(folder.glob("step-*.pt")):
            return
        stored = self.metadata.list_checkpoints(run.id)
        if not stored:
            return
        folder.mkdir(parents=True, exist_ok=True)
        for checkpoint in stored:
            name = "best.pt" if checkpoint.best else f"step-{checkpoint.step:09d}.pt"
            self.artifacts.materialize(checkpoint.digest, folder / name)

    # -- watching ----------------------------------------------------------------

    def _watch(self, active: Active, cancel_requested: bool) -> Progress | None:
        """Telemetry, memory limit, stall and cancel checks for one running attempt."""
        progress = self._observe(active)
        events = list(progress.events) if progress else []
        run_id = active.run.id
        used = active.handle.memory_bytes()
        if used > active.run.resources.memory and active.handle.poll() is None:
            active.memory_exceeded = used
            active.handle.kill()
            return progress
        now = time.monotonic()
        if not active.stalled and now - active.last_change > self.config.stall_seconds:
            active.stalled = True
            message = f"run {run_id} made no progress for {self.config.stall_seconds:.0f} s"
            events.append(self._alert(active, "stalled", "warning", message))
        if active.cancel_deadline is None:
            if cancel_requested:
                (active.run_dir / "STOP").touch()
                active.cancel_deadline = now + CANCEL_GRACE_SECONDS
                events.append(("status", {"status": "cancelling"}))
        elif now > active.cancel_deadline and active.handle.poll() is None:
            active.handle.kill()
        if progress is None and not events:
            return None
        return Progress(
            run_id, progress.values if progress else {}, progress.points if progress else (), events
        )

    def _flush(self, active: Active) -> None:
        progress = self._observe(active)
        if progress is not None:
            self.metadata.record_progress_batch([progress])

    def _observe(self, active: Active) -> Progress | None:
        """What the worker wrote since the last look, as one store update (not yet written)."""
        points = self._new_points(active)
        values: dict[str, Any] = {}
        events: list[tuple[str, dict[str, Any]]] = []
        if points:
            for point in points:
                active.latest[point.name] = point.value
            values["metrics"] = dict(active.latest)
            dumped = [p.model_dump(mode="json", exclude={"at"}) for p in points]
            events.append(("metrics", {"points": dumped}))
            events += self._loss_alerts(active, points)
        progress = self._new_progress(active)
        if progress is not None:
            values |= progress | {"last_progress_at": _now()}
            events.append(("progress", progress))
        self._collect_checkpoints(active)
        if not (values or events):
            return None
        return Progress(active.run.id, values, points, events)

    def _new_points(self, active: Active) -> list[MetricPoint]:
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
        now = time.monotonic()
        active.last_change = now
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
            elapsed = now - active.started
            if done > 0 and elapsed > 0:
                values["eta_seconds"] = round(max(total - step, 0) * elapsed / done, 1)
        return values

    def _loss_alerts(
        self, active: Active, points: list[MetricPoint]
    ) -> list[tuple[str, dict[str, Any]]]:
        events = []
        for point in points:
            if point.name not in LOSS_METRICS:
                continue
            if not math.isfinite(point.value):
                events.append(
                    self._alert(
                        active,
                        "nan_loss",
                        "critical",
                        f"{point.name} became {point.value} at step {point.step}",
                    )
                )
                continue
            active.loss_points += 1
            active.best_loss = min(active.best_loss, point.value)
            if (
                active.loss_points >= DIVERGENCE_MIN_POINTS
                and active.best_loss > 0
                and point.value > DIVERGENCE_FACTOR * active.best_loss
            ):
                events.append(
                    self._alert(
                        active,
                        "diverging_loss",
                        "warning",
                        f"{point.name} {point.value:.4g} at step {point.step} is over "
                        f"{DIVERGENCE_FACTOR:g}x its best {active.best_loss:.4g}",
                    )
                )
        return events

    def _alert(
        self, active: Active, rule: str, severity: str, message: str
    ) -> tuple[str, dict[str, Any]]:
        """Fire the alert; the caller writes the returned event with the rest of its batch."""
        alert = self.metadata.fire_alert(f"run:{active.run.id}", rule, severity, message)
        event = {"rule": rule, "severity": severity, "message": message, "alert": alert.id}
        self._alerted.add(active.run.id)
        return ("alert", event)

    def _collect_checkpoints(self, active: Active) -> None:
        folder = active.run_dir / "checkpoints"
        if not folder.is_dir():
            return
        changed = False
        for path in sorted(folder.glob("*.pt")):
            best = path.name == "best.pt"
            try:
                mtime = path.stat().st_mtime
                if best:  # best.pt is written before best.json: wait for both
                    mtime = max(mtime, (active.run_dir / "best.json").stat().st_mtime)
            except FileNotFoundError:
                continue  # pruned by the trainer while we listed
            if active.checkpoints_seen.get(path.name) == mtime:
                continue
            try:
                step = self._checkpoint_step(path, best)
                blob = self.artifacts.put_file(path)
            except (OSError, ValueError):
                continue  # pruned or half-written: the next look sees the final file
            active.checkpoints_seen[path.name] = mtime
            self.metadata.add_checkpoint(
                Checkpoint(
                    run_id=active.run.id,
                    step=step,
                    digest=blob.digest,
                    size=blob.size,
                    best=best,
                    metric=self._best_metric(active.run_dir) if best else None,
                    created_at=_now(),
                )
            )
            changed = True
        if changed:
            keep = {(step, False) for step in self._local_steps(folder)}
            keep |= {
                (c.step, True) for c in self.metadata.list_checkpoints(active.run.id) if c.best
            }
            best_rows = [c for c in self.metadata.list_checkpoints(active.run.id) if c.best]
            if best_rows:
                keep = {k for k in keep if not k[1]} | {(best_rows[-1].step, True)}
            self.metadata.drop_checkpoints(active.run.id, keep)

    @staticmethod
    def _local_steps(folder: Path) -> list[int]:
        return [int(p.stem.removeprefix("step-")) for p in folder.glob("step-*.pt")]

    @staticmethod
    def _checkpoint_step(path: Path, best: bool) -> int:
        if not best:
            return int(path.stem.removeprefix("step-"))
        best_file = path.parent.parent / "best.json"
        return int(json.loads(best_file.read_text())["step"])

    @staticmethod
    def _best_metric(run_dir: Path) -> float | None:
        try:
            return float(json.loads((run_dir / "best.json").read_text())["value"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- finishing ---------------------------------------------------------------

    def _finish(self, active: Active, code: int) -> None:
        run = self.metadata.get_run(active.run.id)
        result = _read_result(active.run_dir)
        if active.memory_exceeded is not None:
            limit = run.resources.memory
            self._fail(
                run.id,
                "invalid_input",
                f"used {active.memory_exceeded / 2**20:.0f} MiB, over its memory limit of "
                f"{limit / 2**20:.0f} MiB; raise resources.memory",
            )
        elif run.cancel_requested:
            self._end(run.id, RunStatus.CANCELLED, reason="cancelled by request")
        elif code == 0 and "metrics" in result:
            self._complete(run, active.run_dir, result)
        elif code == FAILED and "error" in result:
            error = result["error"]
            self._fail(run.id, str(error.get("code", "invalid_input")), str(error["message"]))
            if error.get("code") == "training_diverged":
                event = self._alert(active, "nan_loss", "critical", str(error["message"]))
                self.metadata.record_progress(run.id, {}, events=[event])
        else:
            self._crashed(run, code, active.run_dir)

    def _complete(self, run: Run, run_dir: Path, result: dict[str, Any]) -> None:
        metrics = {k: float(v) for k, v in result["metrics"].items()}
        output = Path(result.get("output_dir") or run_dir / "output")
        if run.id not in self.metadata.renew_leases(self.owner, self._lease_until()):
            return  # taken over while its worker finished: its new owner completes it
        try:
            version = self.on_result(run, output, metrics)
        except ModelhubError as exc:
            self._fail(run.id, exc.code, f"registering the result failed: {exc.message}")
            return
        self._end(
            run.id,
            RunStatus.COMPLETED,
            result_version=version,
            progress=100.0,
            eta_seconds=0.0,
            metrics={**run.metrics, **metrics},
        )

    def _crashed(self, run: Run, code: int, run_dir: Path) -> None:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        last = _last_log_line(run_dir / "logs.txt")
        detail = f"attempt {run.attempts} crashed ({how})" + (f": {last}" if last else "")
        if run.attempts >= run.max_attempts:
            self._fail(run.id, "unavailable", f"{detail}; no attempts left")
            return
        wait = self.config.backoff_seconds * 2 ** (run.attempts - 1)
        try:
            self.metadata.move_run(
                run.id,
                [RunStatus.RUNNING],
                event={"status": RunStatus.PENDING.value, "reason": detail, "retry_in": wait},
                status=RunStatus.PENDING,
                next_attempt_at=_now() + timedelta(seconds=wait),
                error=f"{detail}; retrying in {wait:g} s",
                error_code="unavailable",
                held_by=self.owner,
                owner=None,
                lease_expires_at=None,
                worker_pid=None,
            )
        except IllegalTransition:
            return

    def _fail(self, run_id: int, code: str, message: str) -> None:
        self._end(run_id, RunStatus.FAILED, error=message, error_code=code)

    def _end(
        self, run_id: int, status: RunStatus, reason: str | None = None, **values: Any
    ) -> None:
        event: dict[str, Any] = {"status": status.value}
        if reason or values.get("error"):
            event["reason"] = reason or values.get("error")
        if values.get("result_version") is not None:
            event["result_version"] = values["result_version"]
        try:
            self.metadata.move_run(
                run_id,
                [RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.PENDING],
                event=event,
                status=status,
                finished_at=_now(),
                held_by=self.owner,
                owner=None,
                lease_expires_at=None,
                worker_pid=None,
                **values,
            )
        except IllegalTransition:
            return
        if run_id in self._alerted:  # most runs raise none: skip the write
            self._alerted.discard(run_id)
            self.metadata.resolve_alerts(f"run:{run_id}", "stalled")


def _read_result(run_dir: Path) -> dict[str, Any]:
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
