"""`RayExecutor`: attempts run as detached actors on a Ray cluster.

Each attempt is one named, detached actor (`AttemptActor`, namespace "modelhub",
named after the run) holding the run's declared resources as Ray resources; the
actor runs the training worker, which reads and writes the run folder exactly as
a local worker does. So the folder must be the same path on the cluster's nodes
as on the server (a shared filesystem): logs, metrics, progress, checkpoints and
the result come back through it and the scheduler watches them unchanged.

The handle the scheduler holds lives in the server:
- `poll` looks, without blocking, whether the actor's `wait` answered; an actor that
  died (killed, its node lost) reads as a crash (-SIGKILL), which the scheduler retries;
- `kill` stops the worker through the actor, then kills the actor;
- `memory_bytes` is the worker's figure as its actor last reported it (asked
  again at each call, never waited for);
- `pid` is the worker's pid where the actor runs in this host's pid space (a head
  on this host), else 0: the server's process sampler then skips it, and the
  attempt's CPU-seconds come from the worker's own usage file at its end.

A restarted server reattaches: `start` first looks for the run's actor by name, and
when one is alive it follows that actor instead of creating another (the attempt
count grows, the worker and its step do not start over). When the actor is gone
but left an outcome nobody collected, that outcome is the attempt's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelhub.domain.ray_address import RayAddress, parse_ray_address
from modelhub.errors import ModelhubError, Unavailable
from modelhub.training.distributed import workers_of
from modelhub.training.executor import Attempt, AttemptHandle
from modelhub.training.ray_engine.actor import (
    OUTCOME_FILE,
    AttemptActor,
    actor_name,
    host_token,
    read_outcome,
    restore_outcome,
)
from modelhub.training.ray_engine.connection import NAMESPACE, RayConnection
from modelhub.training.scheduler.capacity import Capacity

log = logging.getLogger(__name__)

KILLED = -signal.SIGKILL
WORKER_MODULE = "modelhub.training.worker"
TRAIN_MODULE = "modelhub.training.ray_engine.train"
ACTOR_CONCURRENCY = 8  # wait, describe, memory and stop answer while the worker runs
LOST_SECONDS = 60.0  # a cluster that stops answering this long: the attempt counts as crashed
RELEASE_SECONDS = 5.0  # the most a collected actor's name may take to be released
NO_CAPACITY = Capacity(cpus=0.0, memory=0, gpus=0)


@dataclass(frozen=True)
class ClusterStatus:
    """What the Ray engine can offer now: `capacity` sums the alive nodes' resources,
    `available` what running work leaves; both zero when the cluster is unreachable."""

    address: str
    reachable: bool
    reason: str | None
    capacity: Capacity
    available: Capacity
    nodes: int


def _capacity(resources: dict[str, float]) -> Capacity:
    return Capacity(
        cpus=float(resources.get("CPU", 0.0)),
        memory=int(resources.get("memory", 0)),
        gpus=int(resources.get("GPU", 0)),
    )


def _append(log_file: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(log_file, "a") as out:
        out.write(line + "\n")


@dataclass
class RayHandle:
    """An attempt's actor, followed from the server."""

    actor: Any  # ray.actor.ActorHandle
    name: str
    run_dir: Path
    local_host: str
    described: Any  # ObjectRef of actor.describe()
    outcome: Any  # ObjectRef of actor.wait()
    _code: int | None = None
    _pid: int | None = None
    _memory: int = 0
    _memory_ref: Any = None
    _lost_since: float | None = None

    @property
    def pid(self) -> int:
        if self._pid is None:
            import ray

            with contextlib.suppress(Exception):
                if ray.wait([self.described], timeout=0)[0]:
                    info = ray.get(self.described)
                    self._pid = int(info["pid"]) if info["host"] == self.local_host else 0
        return self._pid or 0

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        import ray

        try:
            ready, _ = ray.wait([self.outcome], timeout=0)
        except Exception:  # the cluster does not answer: patience, then a crash
            current = time.monotonic()
            self._lost_since = self._lost_since or current
            if current - self._lost_since < LOST_SECONDS:
                return None
            self._finish(KILLED)
            return self._code
        self._lost_since = None
        if not ready:
            return None
        try:
            outcome = ray.get(ready[0])
        except Exception:  # the actor died before its worker ended (killed, node lost)
            self._finish(KILLED)
        else:
            restore_outcome(self.run_dir, outcome)
            self._finish(int(outcome["code"]))
        return self._code

    def _finish(self, code: int) -> None:
        """Record the code, forget the outcome file (collected now), free the actor.

        Returns once the actor's name is released (milliseconds), so that the run's
        next attempt never takes this ended actor for a live one."""
        import ray

        self._code = code
        (self.run_dir / OUTCOME_FILE).unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            ray.kill(self.actor, no_restart=True)
            deadline = time.monotonic() + RELEASE_SECONDS
            while time.monotonic() < deadline:
                ray.get_actor(self.name, namespace=NAMESPACE)  # ValueError once released
                time.sleep(0.01)

    def kill(self) -> None:
        if self._code is not None:
            return
        import ray

        with contextlib.suppress(Exception):
            if ray.wait([self.described], timeout=0)[0]:  # placed: stop its worker first
                ray.get(self.actor.stop.remote(), timeout=15)
        self._finish(KILLED)

    def memory_bytes(self) -> int:
        if self._code is not None:
            return 0
        import ray

        with contextlib.suppress(Exception):
            if self._memory_ref is not None and ray.wait([self._memory_ref], timeout=0)[0]:
                self._memory = int(ray.get(self._memory_ref))
                self._memory_ref = None
            if self._memory_ref is None and ray.wait([self.described], timeout=0)[0]:
                self._memory_ref = self.actor.memory.remote()
        return self._memory


@dataclass
class FinishedHandle:
    """An attempt whose earlier actor ended while no server watched: its outcome file."""

    run_dir: Path
    outcome: dict[str, Any]
    pid: int = 0

    def poll(self) -> int:
        restore_outcome(self.run_dir, self.outcome)
        (self.run_dir / OUTCOME_FILE).unlink(missing_ok=True)
        return int(self.outcome["code"])

    def kill(self) -> None:
        (self.run_dir / OUTCOME_FILE).unlink(missing_ok=True)

    def memory_bytes(self) -> int:
        return 0


@dataclass
class RayExecutor:
    """Runs attempts on the Ray cluster at `address` (see the module docstring): `auto`,
    `ray://host:port` or `host:port` (InvalidInput for anything else).

    `unreachable` is the settings' policy for a cluster that cannot be reached when a
    run would start on it: keep the run queued ("queue") or fail it with the reason
    ("fail"); `start` raises Unavailable either way, the scheduler applies the policy.
    `on_exit`, when set, is called (from a thread) as soon as an attempt ends.
    """

    address: str
    runs_dir: Path
    unreachable: Literal["queue", "fail"] = "queue"
    connect_timeout: float = 10.0
    on_exit: Callable[[], None] | None = None
    connection: RayConnection = field(init=False)
    _host: str = field(init=False, default="")
    _last_seen: ClusterStatus | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        target: RayAddress = parse_ray_address(self.address)
        self.address = target.text
        self.connection = RayConnection(target, self.connect_timeout)
        self._host = host_token()

    @property
    def keeps_queued(self) -> bool:
        """Whether a run waits queued (rather than fails) while the cluster is unreachable."""
        return self.unreachable == "queue"

    def status(self) -> ClusterStatus:
        """Reachable or not (and why), and the cluster's resources; connects if needed.

        An unreachable cluster reports the capacity it had when last reached (zero if
        never): what runs may still be queued for; nothing is available meanwhile."""
        try:
            self.connection.ensure()
            nodes, total, free = self.connection.bounded(_cluster_figures)
        except Exception as exc:  # Unavailable, or connected once and not answering now
            reason = exc.message if isinstance(exc, Unavailable) else str(exc)
            if not isinstance(exc, Unavailable):
                reason = self.connection.unreachable(reason).message
            last = self._last_seen
            return ClusterStatus(
                self.address,
                False,
                reason,
                last.capacity if last else NO_CAPACITY,
                NO_CAPACITY,
                last.nodes if last else 0,
            )
        seen = ClusterStatus(self.address, True, None, _capacity(total), _capacity(free), nodes)
        self._last_seen = seen
        return seen

    def capacity(self) -> Capacity:
        """The cluster's CPUs, memory and GPUs (as last reached, when it cannot be now)."""
        return self.status().capacity

    def refresh(self) -> tuple[Capacity, int]:
        """(capacity, nodes) now, for the scheduler's engine record; Unavailable with
        the reason when the cluster cannot be reached."""
        status = self.status()
        if not status.reachable:
            raise Unavailable(status.reason or "unreachable", {"engine": "ray"})
        return status.capacity, status.nodes

    def start(self, attempt: Attempt) -> AttemptHandle:
        """Follow the run's live actor, or its uncollected outcome, or submit a new actor.

        Raises Unavailable (naming the address and the reason) when the cluster
        cannot be reached."""
        self.connection.ensure()
        try:
            return self._start(attempt)
        except (ModelhubError, OSError):
            raise
        except Exception as exc:  # Ray's own errors: the cluster failed us, say so
            raise self.connection.unreachable(f"{type(exc).__name__}: {exc}") from exc

    def _start(self, attempt: Attempt) -> AttemptHandle:
        run_dir = attempt.job_file.parent
        name = actor_name(attempt.run_id, self.runs_dir)
        running = self._live_actor(name)
        if running is not None:
            return self._follow(running, name, run_dir, attempt, reattached=True)
        outcome = read_outcome(run_dir)
        if outcome is not None:
            _append(
                attempt.log_file,
                f"attempt {outcome.get('attempt')} ended on the Ray cluster while no server "
                f"watched (exit code {outcome['code']}): attempt {attempt.number} takes its "
                "outcome",
            )
            return FinishedHandle(run_dir, outcome)
        return self._follow(self._submit(name, attempt), name, run_dir, attempt, reattached=False)

    def _submit(self, name: str, attempt: Attempt) -> Any:
        import ray

        job = json.loads(attempt.job_file.read_text())
        distributed = workers_of(job) > 1
        resources = job.get("resources") or {
            "cpus": job.get("threads", 1),
            "gpus": len(job.get("gpus") or []),
        }
        options: dict[str, Any] = {
            "name": name,
            "namespace": NAMESPACE,
            "lifetime": "detached",
            "max_restarts": 0,
            "max_concurrency": ACTOR_CONCURRENCY,
        }
        if distributed:  # a coordinator: Ray Train reserves each worker's share itself
            options |= {"num_cpus": 0, "num_gpus": 0}
        else:
            options |= {"num_cpus": float(resources["cpus"]), "num_gpus": resources["gpus"]}
            if resources.get("memory"):
                options["memory"] = int(resources["memory"])
        module = TRAIN_MODULE if distributed else WORKER_MODULE
        what = f"Ray Train, {job['distributed']['workers']} workers" if distributed else module
        _append(
            attempt.log_file,
            f"submitted to the Ray cluster at {self.address} as actor {name} ({what})",
        )
        remote = ray.remote(AttemptActor).options(**options)
        return remote.remote(
            attempt.run_id,
            attempt.number,
            str(attempt.job_file),
            str(attempt.log_file),
            module,
        )

    def _live_actor(self, name: str) -> Any | None:
        import ray

        try:
            return ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return None

    def _follow(
        self, actor: Any, name: str, run_dir: Path, attempt: Attempt, reattached: bool
    ) -> RayHandle:
        handle = RayHandle(
            actor=actor,
            name=name,
            run_dir=run_dir,
            local_host=self._host,
            described=actor.describe.remote(),
            outcome=actor.wait.remote(),
        )
        if reattached:
            self._note_reattached(handle, attempt)
        if self.on_exit is not None:
            threading.Thread(target=self._report_exit, args=(handle.outcome,), daemon=True).start()
        return handle

    def _note_reattached(self, handle: RayHandle, attempt: Attempt) -> None:
        import ray

        try:
            info = ray.get(handle.described, timeout=self.connect_timeout)
            where = f"node {info['node']}, worker pid {info['pid']}, attempt {info['attempt']}"
        except Exception:
            where = "not placed yet"
        _append(
            attempt.log_file,
            f"attempt {attempt.number} reattached to the run's Ray actor ({where}): "
            "the run goes on, it is not started again",
        )

    def _report_exit(self, outcome: Any) -> None:
        import ray

        with contextlib.suppress(Exception):
            ray.wait([outcome], timeout=None)
        if self.on_exit is not None:
            self.on_exit()

    def find(self, run_id: int) -> dict[str, Any] | None:
        """The run's live actor as it describes itself (pid, node, attempt, exit code
        once its worker ended), or None when it has none."""
        self.connection.ensure()
        import ray

        actor = self._live_actor(actor_name(run_id, self.runs_dir))
        if actor is None:
            return None
        try:
            info: dict[str, Any] = ray.get(actor.describe.remote(), timeout=self.connect_timeout)
        except Exception:
            return None
        return info

    def close(self) -> None:
        """Disconnect from the cluster; actors still running keep running (detached)."""
        self.connection.close()


def _cluster_figures() -> tuple[int, dict[str, float], dict[str, float]]:
    """Live nodes, total and available resources, as the cluster's GCS reports them."""
    import ray

    listed: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    nodes = sum(1 for node in listed if node.get("Alive"))
    total: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    free: dict[str, float] = ray.available_resources()  # type: ignore[no-untyped-call]
    return nodes, total, free
