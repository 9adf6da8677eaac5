"""Where attempts run. The scheduler decides what and when; an executor decides where.

The interface is two small protocols, which the Ray engine's executor
(`training/ray_engine/`) implements too. `LocalExecutor` runs each attempt in its own
worker process on this host, in its own process group (so a kill takes the script
trainer's child along), and keeps a few warm workers that have already imported
torch. A distributed job (`distributed.workers` > 1) runs as a group of workers
started by `modelhub.training.launcher` instead, always cold: the launcher's process
group holds every rank, so the handle's pid, kill, poll and memory cover the group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from modelhub.errors import ModelhubError, Unavailable
from modelhub.limits import CgroupV2, Enforcement, Limits
from modelhub.plugins import Registry, needs
from modelhub.processes import Spawner

if TYPE_CHECKING:
    from modelhub.settings import Settings


@dataclass(frozen=True)
class Attempt:
    run_id: int
    number: int
    job_file: Path
    log_file: Path


class AttemptHandle(Protocol):
    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit code once the attempt's process has ended, else None."""

    def kill(self) -> None:
        """SIGKILL the attempt's process and everything it started."""

    def memory_bytes(self) -> int:
        """Anonymous resident memory of the attempt's processes, for the memory limit."""


class Executor(Protocol):
    def start(self, attempt: Attempt) -> AttemptHandle: ...

    def close(self) -> None: ...


def _worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelhub.training.worker", *args]


def _launcher_command(job_file: Path) -> list[str]:
    return [sys.executable, "-m", "modelhub.training.launcher", str(job_file)]


def _distributed(job_file: Path) -> bool:
    from modelhub.training.distributed import workers_of

    return workers_of(json.loads(job_file.read_text())) > 1


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid`, read from /proc (empty where it is gone)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                found += [int(child) for child in listing.read().split()]
        except OSError:
            continue
    return found


def tree_memory(pid: int) -> int:
    """Anonymous resident bytes of `pid` and its descendants (0 where absent).

    Resident minus shared pages (/proc/PID/statm): the heap, tensors and Python
    objects a run holds, not the mapped torch libraries, which are file-backed,
    shared between workers and reclaimable. This is what a memory limit should
    count; plain RSS would charge every run ~80 MiB of torch's code.
    """
    total, todo, seen = 0, [pid], set()
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/statm") as statm:
                fields = statm.read().split()
            total += (int(fields[1]) - int(fields[2])) * page
        except (OSError, ValueError, IndexError):
            continue
        todo += child_pids(current)
    return total


@dataclass
class LocalHandle:
    process: subprocess.Popen[bytes]
    log: IO[bytes] | None = None
    cgroup: Path | None = None  # its own cgroup, where a cgroup v2 holds its limits

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None and self.log is not None:
            self.log.close()
            self.log = None
        if code is not None and self.cgroup is not None:
            CgroupV2.remove(self.cgroup)
            self.cgroup = None
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.poll()

    def memory_bytes(self) -> int:
        return tree_memory(self.process.pid)


@dataclass
class LocalExecutor:
    """Worker processes on this host; `warm` of them wait with torch imported.

    `on_exit`, when set, is called (from a thread that waits on the process) as soon
    as an attempt's process ends, so that the scheduler finishes it and fills its
    slot now rather than at its next tick.
    """

    warm: int = 1
    pool_log: Path | None = None
    warm_imports: tuple[str, ...] = ()  # more modules a warm worker imports
    on_exit: Callable[[], None] | None = None
    _pool: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False
    _spawner: Spawner = field(default_factory=Spawner)
    # Where a cgroup v2 may be made per attempt (the job's `limits`); None: none is.
    enforcement: Enforcement | None = None

    def __post_init__(self) -> None:
        self._refill()

    def _environment(self) -> dict[str, str]:
        return {**os.environ, "MODELHUB_WORKER_PARENT": str(os.getpid())}

    def _refill(self) -> None:
        self._spawner.call(self._fill)

    def _fill(self) -> None:
        with self._lock:
            self._pool = [worker for worker in self._pool if worker.poll() is None]
            while not self._closed and len(self._pool) < self.warm:
                self._pool.append(self._spawn_warm())

    def _spawn_warm(self) -> subprocess.Popen[bytes]:
        sink: IO[bytes] | int = subprocess.DEVNULL
        if self.pool_log is not None:
            self.pool_log.parent.mkdir(parents=True, exist_ok=True)
            sink = open(self.pool_log, "ab")  # noqa: SIM115 (the child owns it from here)
        try:
            return subprocess.Popen(
                _worker_command("--warm", *self.warm_imports),
                stdin=subprocess.PIPE,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
                env=self._environment(),
            )
        finally:
            if not isinstance(sink, int):
                sink.close()

    def _spawn_cold(self, attempt: Attempt, command: list[str]) -> LocalHandle:
        log = open(attempt.log_file, "ab")  # noqa: SIM115 (closed by the handle)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self._environment(),
            )
        except BaseException:
            log.close()
            raise
        return LocalHandle(process, log)

    def warm_workers(self) -> list[int]:
        """The process ids of the warm workers alive now, waiting for a job."""
        with self._lock:
            return [worker.pid for worker in self._pool if worker.poll() is None]

    def _take_warm(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            while self._pool:
                worker = self._pool.pop(0)
                if worker.poll() is None:
                    return worker
        return None

    def start(self, attempt: Attempt) -> AttemptHandle:
        if _distributed(attempt.job_file):
            command = _launcher_command(attempt.job_file)
            worker = None  # a warm worker is one process; a group starts cold
        else:
            command = _worker_command(str(attempt.job_file))
            worker = self._take_warm()
        handle: LocalHandle | None = None
        cgroup = None
        if worker is not None and worker.stdin is not None:
            cgroup = self._confine(attempt, worker.pid)  # before it reads its job
            try:
                worker.stdin.write(f"{attempt.job_file}\n".encode())
                worker.stdin.close()
                handle = LocalHandle(worker)
            except OSError:  # it died between the poll and the write
                worker.kill()
                worker.wait()
        if handle is None:
            handle = self._spawner.call(lambda: self._spawn_cold(attempt, command)).result()
            cgroup = self._confine(attempt, handle.pid)
        handle.cgroup = cgroup
        if self.on_exit is not None:
            threading.Thread(target=self._report_exit, args=(handle.process,), daemon=True).start()
        self._refill()
        return handle

    def _confine(self, attempt: Attempt, pid: int) -> Path | None:
        """Move the attempt's process into its own cgroup with the job's limits (cgroup v2
        only). The worker still applies its own (affinity, address space) as well."""
        if self.enforcement is None or self.enforcement.cgroup is None:
            return None
        limits = Limits.from_json(json.loads(attempt.job_file.read_text()).get("limits"))
        name = f"modelhub-run-{attempt.run_id}-{attempt.number}"
        return self.enforcement.confine(name, pid, limits)

    def _report_exit(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()  # meanwhile poll() answers None; afterwards it returns the code
        if self.on_exit is not None:
            self.on_exit()

    def close(self) -> None:
        """Stop the warm workers (they exit on end of input) and the spawner thread.

        Attempts still running lose their parent thread and are killed with it:
        the scheduler stops or requeues them before closing its executor.
        """
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for worker in pool:
            if worker.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.stdin.close()
        for worker in pool:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        self._spawner.close()


class ExecutorFactory(Protocol):
    """One entry of `modelhub.executors`: builds its engine's executor from the settings.

    Returns None where the settings do not set the engine up here (the Ray engine
    without a cluster address); the engine is then not offered. The executor it
    returns is started on by the scheduler (`start`, then the handle's `poll`, `kill`,
    `memory_bytes`) and closed when the scheduler stops. Optional: `refresh()` ->
    (Capacity, nodes), re-read each scheduler tick (raise Unavailable while it cannot
    be reached), and an `on_exit` attribute the scheduler sets to be woken when an
    attempt ends."""

    def __call__(self, settings: Settings) -> Executor | None: ...


def open_local(settings: Settings) -> LocalExecutor:
    """The `local` engine's executor: worker processes on this host."""
    return LocalExecutor(
        warm=settings.train_warm_workers,
        pool_log=settings.runs_dir / "workers.log",
        warm_imports=tuple(settings.train_warm_imports),
        enforcement=Enforcement.detect(settings.cgroup_root),
    )


def executor_factory(obj: object) -> ExecutorFactory:
    """The check of `modelhub.executors` entries: a callable that is not a class (an
    executor class would be called with the settings as its first argument)."""
    if isinstance(obj, type) or not callable(obj):
        what = getattr(obj, "__name__", None) or type(obj).__name__
        raise TypeError(
            f"{what} is not an executor factory: name a function open(settings) -> executor"
        )
    return obj


def open_executor(
    name: str, settings: Settings, registry: Registry[ExecutorFactory] | None = None
) -> Executor | None:
    """The executor of the engine `name`, built by its factory (None: not set up here).

    Raises NotFound for a name nobody provides, and Unavailable naming the engine when
    its plugin failed to load, its factory raised, or what it returned is no executor.
    `registry` is the extension point to look in (EXECUTORS).
    """
    factory = (registry or EXECUTORS).get(name)
    try:
        executor = factory(settings)
    except ModelhubError:
        raise
    except Exception as exc:  # a plugin's factory may raise anything
        raise Unavailable(
            f"the {name} executor could not be built: {type(exc).__name__}: {exc}"[:500],
            {"engine": name},
        ) from exc
    if executor is None:
        return None
    try:
        needs(executor, "start", "close")
    except TypeError as exc:
        raise Unavailable(f"the {name} executor factory returned {exc}", {"engine": name}) from None
    return executor


# The `modelhub.executors` extension point: factories of executors, one an engine.
# torch.distributed and Flower runs are modes of the local executor (a launcher, a
# federated job), not executors of their own.
EXECUTORS: Registry[ExecutorFactory] = Registry(
    "executors",
    executor_factory,
    [
        (
            "local",
            "modelhub.training.executor:open_local",
            "worker processes on this host (also torch.distributed and Flower runs)",
        ),
        ("ray", "modelhub.training.ray_engine:open_ray", "a Ray cluster (modelhub[ray])"),
    ],
)
