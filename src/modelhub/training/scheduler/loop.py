"""The scheduler itself: one loop that fills slots and watches them, and a finisher.

`tick` first notes the attempts whose worker exited (freeing their slots and
handing results to the finisher), renews leases, releases backoffs, admits queued
runs while they fit, then watches the running ones. The finisher thread registers
results meanwhile, so no slot waits on a registration.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelhub.domain.runs import QueuedRun, Run, RunStatus
from modelhub.errors import IllegalTransition, ModelhubError, Unavailable
from modelhub.limits import Limits, choose_cpus, machine_cpus
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import MetadataStore, Progress
from modelhub.training.distributed import workers_of
from modelhub.training.executor import Attempt
from modelhub.training.scheduler.admission import in_start_order, release_backoffs
from modelhub.training.scheduler.capacity import Capacity, free_gpus
from modelhub.training.scheduler.checkpoints import CheckpointUpload
from modelhub.training.scheduler.engines import TrainingEngine, choose_engine
from modelhub.training.scheduler.finishing import Finisher, RegisteredHook, ResultHook
from modelhub.training.scheduler.moves import RunMoves, now
from modelhub.training.scheduler.resources import ResourceWatch
from modelhub.training.scheduler.watching import Active, Watcher, new_points
from modelhub.training.usage import clear_usage

log = logging.getLogger(__name__)

PrepareHook = Callable[[Run, Path], dict[str, Any]]


@dataclass
class SchedulerConfig:
    capacity: Capacity  # the local engine's: this host's
    max_running: int = 8
    backoff_seconds: float = 2.0
    aging_seconds: float = 300.0
    stall_seconds: float = 600.0
    tick_seconds: float = 0.1
    watch_seconds: float = 0.25  # how often running attempts' files are read
    lease_seconds: float = 10.0  # a run whose owner stops renewing is taken over after this
    heartbeat_seconds: float = 2.0  # how often leases are renewed and expired ones swept
    engine_seconds: float = 30.0  # how often engines whose capacity can change are re-read
    resource_seconds: float = 30.0  # how often running workers' CPU, memory, GPU are sampled


class Scheduler:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        engines: dict[str, TrainingEngine],
        runs_dir: Path,
        config: SchedulerConfig,
        prepare: PrepareHook,
        on_result: ResultHook,
        registered: RegisteredHook,
    ) -> None:
        self.metadata = metadata
        self.engines = engines
        self.runs_dir = runs_dir
        self.config = config
        self.prepare = prepare
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self.active: dict[int, Active] = {}  # one per worker: the running cap counts these
        self._turns = 0  # where the next local attempt's CPUs start (modelhub.limits)
        self._cpus = machine_cpus()
        self.moves = RunMoves(metadata, self.owner, config.lease_seconds)
        self.checkpoints = CheckpointUpload(metadata, artifacts)
        self.watcher = Watcher(metadata, self.checkpoints, self.moves, config.stall_seconds)
        self.resources = ResourceWatch(metadata, config.resource_seconds)
        self.finisher = Finisher(
            metadata,
            self.moves,
            self.checkpoints,
            runs_dir,
            config.backoff_seconds,
            on_result,
            registered,
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_watch = 0.0
        self._next_heartbeat = 0.0
        self._next_engine_look = 0.0

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Take over what stopped schedulers left, then run the loop and the finisher."""
        self.recover()
        for name, target in (
            ("modelhub-scheduler", self._loop),
            ("modelhub-finisher", lambda: self.finisher.serve(self._stop)),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop scheduling; running attempts are asked to checkpoint, then requeued.

        Runs already finishing are finished first: their workers are done."""
        self._stop.set()
        self._wake.set()
        self.finisher.wake()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.finisher.finish_pending()
        for active in self.active.values():
            (active.run_dir / "STOP").touch()
        deadline = time.monotonic() + grace_seconds
        while any(a.handle.poll() is None for a in self.active.values()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for run_id, active in list(self.active.items()):
            active.handle.kill()
            self.watcher.flush(active)
            self.watcher.record_usage(active, final=True)
            (active.run_dir / "STOP").unlink(missing_ok=True)
            if self.moves.requeue(run_id, "interrupted: the server stopped"):
                self.moves.end_if_cancel_asked(run_id)
        self.active.clear()
        for engine in self.engines.values():
            engine.executor.close()
        self.resources.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("scheduler tick failed")
            self._wake.wait(self.config.tick_seconds)
            self._wake.clear()

    def finish_pending(self) -> int:
        """Register the results waiting in `finishing` now, in the caller's thread.

        `start` runs this on the finisher thread; whoever ticks by hand calls it."""
        return self.finisher.finish_pending()

    def recover(self) -> list[int]:
        """Take over the runs of schedulers that stopped renewing their lease.

        Running ones are queued again (they resume from their newest checkpoint), or
        cancelled where a cancel was asked before; finishing ones are finished here.
        Returns the ids requeued."""
        reason = "interrupted: the scheduler that ran it stopped renewing its lease"
        recovered = []
        for run_id in self.metadata.requeue_expired(now(), reason):
            (self.run_dir(run_id) / "STOP").unlink(missing_ok=True)
            self.metadata.resolve_alerts(f"run:{run_id}", "stalled")
            if not self.moves.end_if_cancel_asked(run_id):
                recovered.append(run_id)
        self.finisher.take_over_expired()
        return recovered

    def heartbeat(self) -> list[int]:
        """Renew the leases of the runs this scheduler holds, then sweep expired ones.

        A run whose lease another scheduler took over (this one stalled past the
        expiry) is no longer ours: its worker is killed and the run left alone.
        Returns the ids of runs requeued by the sweep."""
        if not (self.active or self.finisher.holds_any()):
            return self.recover()
        held = self.metadata.renew_leases(self.owner, self.moves.lease_until())
        for run_id in [r for r in self.active if r not in held]:
            log.warning("run %s: lease lost to another scheduler; stopping its worker", run_id)
            self.active.pop(run_id).handle.kill()
        self._requeue_unfollowed(held)
        return self.recover()

    def _requeue_unfollowed(self, held: set[int]) -> None:
        """Queue again the running runs this scheduler holds but does not follow.

        A launch cut short after its claim, or an attempt's end whose handling failed,
        by the database going away leaves the run running under this scheduler with no
        worker watched: its lease, renewed with the others, would never lapse. Called
        on the scheduler thread, where launches and ends happen, so none is halfway."""
        for run_id in held - set(self.active):
            if self.metadata.get_run(run_id).status is not RunStatus.RUNNING:
                continue  # finishing: the finisher holds it
            reason = "interrupted: its attempt was cut short by a failed database write"
            log.warning("run %s: running here with no worker followed; queued again", run_id)
            if self.moves.requeue(run_id, reason):
                self.moves.end_if_cancel_asked(run_id)

    def _limits(self, run: Run, gpus: list[int]) -> Limits:
        """A local attempt's limits: its CPUs (further along at each attempt) and, for a
        single process, its memory; a distributed group's ranks are held to the
        memory limit by the scheduler's own measure, which counts the whole group."""
        self._turns += 1
        single = workers_of(run.spec) == 1 and not run.spec.get("federated")
        return Limits(
            memory=run.resources.memory if single else None,
            cpus=choose_cpus(run.resources.cpus, self._turns - 1, self._cpus),
            cpu_quota=run.resources.cpus,
            gpus=tuple(gpus),
        )

    def run_dir(self, run_id: int) -> Path:
        return self.runs_dir / str(run_id)

    # -- one pass ---------------------------------------------------------------

    def tick(self) -> None:
        """Free the slots of exited workers and fill them first; then look at the others."""
        for run_id, active in list(self.active.items()):
            code = active.handle.poll()
            if code is not None:
                self.watcher.flush(active, checkpoints=False)
                self.watcher.record_usage(active, final=True)
                del self.active[run_id]
                self.finisher.worker_exited(active, code)
        self._admit()  # freed slots first: the lease and backoff chores can wait
        current = time.monotonic()
        requeued: list[int] = []
        if current >= self._next_heartbeat:
            self._next_heartbeat = current + self.config.heartbeat_seconds
            requeued = self.heartbeat()
        if current >= self._next_engine_look:
            self._next_engine_look = current + self.config.engine_seconds
            if self.refresh_engines():
                self._admit()
        if release_backoffs(self.metadata) or requeued:
            self._admit()
        current = time.monotonic()
        if self.active and current >= self._next_watch:
            self._next_watch = current + self.config.watch_seconds
            cancelling = self._cancel_requested()
            batch = [
                self.watcher.watch(active, run_id in cancelling)
                for run_id, active in self.active.items()
            ]
            self.metadata.record_progress_batch([item for item in batch if item is not None])
            for active in self.active.values():
                self.watcher.recorded(active)
        if self.active:
            workers = {run_id: active.handle.pid for run_id, active in self.active.items()}
            sampled = self.resources.maybe_sample(workers, time.monotonic())
            for run_id, cpu_seconds in sampled.items():
                self.watcher.sampled(self.active[run_id], cpu_seconds)

    def _cancel_requested(self) -> set[int]:
        """Running runs someone asked to cancel: one query a tick, not one per run."""
        return {r.id for r in self.metadata.list_runs([RunStatus.RUNNING]) if r.cancel_requested}

    def free(self, engine: str = "local") -> Capacity:
        """The engine's capacity less what the attempts running on it hold."""
        held = (a.run.resources for a in self.active.values() if a.engine == engine)
        return self.engines[engine].capacity.minus(held)

    def refresh_engines(self) -> bool:
        """Re-read the capacity of engines that can change (a cluster); True when one came
        back online, so that runs waiting for it are admitted now."""
        back = False
        for engine in self.engines.values():
            if engine.refresh is None:
                continue
            try:
                engine.capacity, engine.nodes = engine.refresh()
            except ModelhubError as exc:
                engine.online, engine.reason = False, exc.message
                continue
            back = back or not engine.online
            engine.online, engine.reason = True, None
        return back

    def queue(self) -> list[QueuedRun]:
        """Queued runs, first to start first."""
        return in_start_order(self.metadata.queued_runs(), self.config.aging_seconds)

    def _admit(self) -> None:
        if len(self.active) >= self.config.max_running:
            return
        online = [name for name, engine in self.engines.items() if engine.online]
        for run in self.queue():
            if len(self.active) >= self.config.max_running:
                return
            free = {name: self.free(name) for name in self.engines}
            engine = choose_engine(run.resources, run.requested_engine, free, online)
            if engine is None and self._fails_while_offline(run.requested_engine):
                engine = run.requested_engine  # its start fails the run with the reason
            if engine is not None:
                self.launch(run, engine)

    def _fails_while_offline(self, name: str | None) -> bool:
        """Whether runs that name engine `name` fail, rather than wait, while it is offline."""
        found = self.engines.get(name) if name is not None else None
        return found is not None and not found.online and not found.requeue_unreachable

    def launch(self, queued: QueuedRun, engine: str = "local") -> None:
        """Claim a queued run, prepare its folder and job, and start it on `engine`."""
        number = queued.attempts + 1
        try:
            run = self.metadata.move_run(
                queued.id,
                [RunStatus.QUEUED],
                event={"status": RunStatus.RUNNING.value, "attempt": number},
                status=RunStatus.RUNNING,
                attempts=number,
                started_at=queued.started_at or now(),
                owner=self.owner,
                lease_expires_at=self.moves.lease_until(),
                cancel_requested=False,
                error=None,
                error_code=None,
                engine=engine,
            )
        except IllegalTransition:
            return  # cancelled, or claimed by another scheduler, since we listed it
        claimed = time.monotonic()
        run_dir = self.run_dir(run.id)
        gpus: list[int] = []
        if engine == "local":  # a cluster hands out its own devices
            taken = (gpu for a in self.active.values() if a.engine == engine for gpu in a.gpus)
            gpus = free_gpus(self.engines[engine].capacity.gpus, taken, run.resources.gpus)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            for stale in ("STOP", "result.json"):
                (run_dir / stale).unlink(missing_ok=True)
            clear_usage(run_dir)
            if number > 1:  # a first attempt has no checkpoints to bring back
                self.checkpoints.restore(run, run_dir)
            job = self.prepare(run, run_dir)
            threads = max(1, int(run.resources.cpus / workers_of(run.spec)))
            job |= {"gpus": gpus, "threads": threads, "engine": engine}
            if engine == "local":  # a cluster holds its workers to their resources itself
                job["limits"] = self._limits(run, gpus).to_json()
            job_file = run_dir / "job.json"
            tmp = job_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(job, indent=2))
            tmp.replace(job_file)
            log_file = run_dir / "logs.txt"
            # No one can take the run before its lease expires: ask the store only when
            # preparing took long enough that it might have (a write less per hand-over).
            preparing = time.monotonic() - claimed
            if preparing > self.config.lease_seconds / 2 and not self.moves.still_held(run.id):
                return  # preparing outlasted the lease and another scheduler took the run
            with open(log_file, "a") as out:
                began = f"{now():%Y-%m-%d %H:%M:%S}Z"
                out.write(f"--- attempt {number} of {run.max_attempts} at {began} ---\n")
            handle = self.engines[engine].executor.start(
                Attempt(run.id, number, job_file, log_file)
            )
        except Unavailable as exc:
            self._unreachable(run, engine, exc)
            return
        except ModelhubError as exc:
            self.moves.fail(run.id, exc.code, exc.message)
            return
        except OSError as exc:
            self.moves.fail(run.id, "unavailable", f"cannot start the attempt: {exc}")
            return
        active = Active(
            run=run,
            handle=handle,
            run_dir=run_dir,
            engine=engine,
            gpus=gpus,
            started=time.monotonic(),
            start_step=run.step,
            cpu_baseline=self.resources.baseline(handle.pid),
        )
        # The file keeps earlier attempts' lines: those past the last step on record
        # were never read (their scheduler died first) and are recorded with the
        # worker's pid, once: below, or at the next look if that write fails.
        unread = [p for p in new_points(active) if p.step > run.step]
        active.unrecorded = Progress(run.id, {"worker_pid": handle.pid}, unread)
        active.checkpoints_seen = self.checkpoints.present(run_dir)
        # Followed from here on: a database write that fails now fails a tick, and
        # leaves neither the worker nor the run without a scheduler.
        self.active[run.id] = active
        self.metadata.record_progress_batch([active.unrecorded])
        self.watcher.recorded(active)

    def _unreachable(self, run: Run, engine: str, exc: Unavailable) -> None:
        """The engine could not take the attempt: queue the run again (it starts when the
        engine is back, or elsewhere if it names none) or fail it, as the engine says."""
        found = self.engines[engine]
        found.online, found.reason = False, exc.message
        reason = f"{engine} engine unreachable: {exc.message}"
        log.warning("run %s: %s", run.id, reason)
        if found.requeue_unreachable:
            self.moves.requeue(run.id, reason)
        else:
            self.moves.fail(run.id, exc.code, reason)
