"""Starting replica processes: from a warm spare when one waits, else a fresh one.

Every fork happens on one long-lived spawner thread, because Linux delivers a child's
parent-death signal when the *thread* that forked it ends. A warm spare has already
imported torch and friends and waits on a Unix socket for its assignment: the
deployment's endpoint socket (sent as a file descriptor) and the models file.

Sockets handed to a replica are bound here but not listening: the replica starts
listening once its preloaded models answer, so until a replica of a deployment is
ready its port refuses connections at once instead of queueing them unanswered
(after a server restart, say), and a probe of a replica still loading fails fast.

A spare still importing is taken as well (a deployment just after the server
started): it stops importing and is ahead of a process started only then. Spares are
refilled once the replicas they were taken for are ready, not while those load: on a
small machine a new spare's imports would slow them down.

`warm_spares` is a ceiling: spares being started count as well as those waiting,
so however often `fill` is called (once per launched replica) no more run.

A replica's resource limits (`modelhub.limits`) travel with its assignment: where a
cgroup v2 holds them, the process is moved into its own cgroup here before it is told
what to serve; the replica pins itself to its CPUs, sets CUDA_VISIBLE_DEVICES and, on
the fallback, limits its own address space once its libraries are imported.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelhub.limits import Enforcement, Limits, count_gpus, machine_cpus
from modelhub.processes import Spawner
from modelhub.serving.dataplane import replica

# The replica process and this launcher agree on these through the replica module.
REPLICA_MODULE = replica.__name__  # started as `python -m`; importing it here is cheap
WARM = replica.WARM  # a spare's word on its channel: imports done
SECRET_ENV = replica.SECRET_ENV
PARENT_ENV = replica.PARENT_ENV

if TYPE_CHECKING:
    from modelhub.settings import Settings


@dataclass(frozen=True)
class ReplicaSettings:
    workdir: Path
    memory_budget: int | None = None
    max_batch_size: int = 32
    max_wait_ms: float = 0.0
    rollup_seconds: int = 60
    max_body_bytes: int = 16 * 1024 * 1024
    threads: int = 1
    ready_timeout: float = 120.0
    drain_seconds: float = 30.0
    bind_host: str = "127.0.0.1"
    warm_spares: int = 0
    warm_imports: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    spool: Path | None = None  # where replicas put closed prediction log files
    log_queue: int = 4096
    log_file_bytes: int = 8 * 1024 * 1024
    log_file_seconds: float = 60.0
    # The data-plane listener's token questions go here (None: no listener, so
    # replicas take no handed-over connections); answers are trusted this long.
    verify_socket: Path | None = None
    token_cache_seconds: float = 1.0
    python: str = field(default_factory=lambda: sys.executable)
    cgroup_root: Path | None = None  # None: the server's own cgroup, when it may write it

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplicaSettings:
        memory_budget = None
        if settings.serve_memory:
            from modelhub.domain.pipelines import parse_memory

            memory_budget = parse_memory(settings.serve_memory)
        return cls(
            workdir=settings.serving_dir / "replicas",
            memory_budget=memory_budget,
            max_batch_size=settings.serve_max_batch_size,
            max_wait_ms=settings.serve_max_wait_ms,
            rollup_seconds=settings.monitoring_rollup_seconds,
            max_body_bytes=settings.serve_max_body_bytes,
            threads=settings.serve_threads,
            ready_timeout=settings.serve_ready_timeout_seconds,
            drain_seconds=settings.serve_drain_seconds,
            warm_spares=settings.serve_warm_spares,
            warm_imports=tuple(settings.serve_warm_imports),
            trusted_proxies=tuple(settings.trusted_proxies),
            spool=settings.prediction_spool_dir,
            log_queue=settings.prediction_log_queue,
            log_file_bytes=settings.prediction_log_file_bytes,
            log_file_seconds=settings.prediction_log_file_seconds,
            cgroup_root=settings.cgroup_root,
            verify_socket=(
                settings.serving_dir / "dataplane.sock"
                if settings.data_plane_port is not None
                else None
            ),
            token_cache_seconds=settings.data_plane_token_cache_seconds,
        )


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening: its replica listens on it.

    Only a given port (a deployment's, again after a restart) is bound with
    SO_REUSEADDR, to get past connections in TIME_WAIT. Two sockets that both set it
    may share a port while neither listens, so a port the kernel picks (0) is bound
    without it: that one stays ours alone, and a given port already held fails here."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    private_port: int
    log: Path
    limits: Limits = field(default_factory=Limits)
    cgroup: Path | None = None  # its own cgroup, where a cgroup v2 holds its limits


@dataclass
class _Spare:
    started: Started
    channel: socket.socket
    warm: bool = False  # it said so on its channel: its imports are done

    def is_warm(self) -> bool:
        """Whether the spare finished importing (said so on its channel)."""
        if not self.warm and select.select([self.channel], [], [], 0)[0]:
            self.warm = self.channel.recv(1) == WARM
        return self.warm


class ReplicaLauncher:
    def __init__(self, settings: ReplicaSettings) -> None:
        self.settings = settings
        self.spares_dir = settings.workdir / "spares"
        self._spawner = Spawner()
        self._spares: list[_Spare] = []
        self._starting = 0  # spares asked of the spawner, not yet in _spares
        self._lock = threading.Lock()
        self._counter = 0
        self._closed = False
        self.enforcement = Enforcement.detect(settings.cgroup_root)
        self.cpus = machine_cpus()
        self.gpus = count_gpus()
        self._turns = 0

    def next_turn(self) -> int:
        """A number that grows with every limited replica: where its CPUs start."""
        with self._lock:
            self._turns += 1
            return self._turns - 1

    def _options(self) -> list[str]:
        s = self.settings
        return [
            "--memory", str(s.memory_budget or 0),
            "--max-batch-size", str(s.max_batch_size),
            "--max-wait-ms", str(s.max_wait_ms),
            "--rollup-seconds", str(s.rollup_seconds),
            "--max-body-bytes", str(s.max_body_bytes),
            "--threads", str(s.threads),
            *(option for proxy in s.trusted_proxies for option in ("--trusted-proxy", proxy)),
            *(["--spool", str(s.spool)] if s.spool is not None else []),
            "--log-queue", str(s.log_queue),
            "--log-file-bytes", str(s.log_file_bytes),
            "--log-file-seconds", str(s.log_file_seconds),
            *(["--verify-socket", str(s.verify_socket)] if s.verify_socket is not None else []),
            "--token-cache-seconds", str(s.token_cache_seconds),
        ]  # fmt: skip

    def _popen(
        self, extra: list[str], pass_fds: tuple[int, ...], log: Path, secret: str | None
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        if secret is not None:
            env[SECRET_ENV] = secret
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            return subprocess.Popen(
                [self.settings.python, "-m", REPLICA_MODULE, *extra, *self._options()],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                env=env,
                start_new_session=True,
            )

    def _next_log(self, folder: Path) -> Path:
        with self._lock:
            self._counter += 1
            return folder / f"replica-{self._counter}.log"

    # -- spares ---------------------------------------------------------------

    def fill(self) -> None:
        """Start spares (in the background) until `warm_spares` wait or are starting."""
        with self._lock:
            missing = max(0, self.settings.warm_spares - len(self._spares) - self._starting)
            self._starting += missing
        for _ in range(missing):
            self._spawner.call(self._make_spare)

    def spares(self) -> list[int]:
        """Process ids of the spares waiting for an assignment."""
        with self._lock:
            return [s.started.process.pid for s in self._spares if s.started.process.poll() is None]

    def settle(self) -> None:
        """Wait until the spares asked for so far have started (or failed to)."""
        self._spawner.call(lambda: None).result()

    def _make_spare(self) -> None:
        try:
            self._start_spare()
        finally:
            with self._lock:
                self._starting -= 1

    def _start_spare(self) -> None:
        if self._closed:
            return
        private = bind("127.0.0.1", 0)
        ours, theirs = socket.socketpair()
        log = self._next_log(self.spares_dir)
        warm = [option for module in self.settings.warm_imports for option in ("--warm", module)]
        try:
            process = self._popen(
                [
                    "--assignment-fd",
                    str(theirs.fileno()),
                    "--private-fd",
                    str(private.fileno()),
                    *warm,
                ],
                (theirs.fileno(), private.fileno()),
                log,
                None,
            )
            started = Started(process, private.getsockname()[1], log)
        finally:
            theirs.close()
            private.close()
        with self._lock:
            if self._closed:
                ours.close()
                return
            self._spares.append(_Spare(started, ours))

    def _take_spare(self) -> _Spare | None:
        """A warm spare if one waits, else the one furthest into its imports (started
        first), else None; dead ones are dropped."""
        with self._lock:
            for spare in list(self._spares):
                if spare.started.process.poll() is not None:
                    self._spares.remove(spare)
                    spare.channel.close()
            alive = sorted(self._spares, key=lambda spare: not spare.is_warm())
            if not alive:
                return None
            self._spares.remove(alive[0])
            return alive[0]

    # -- launching ------------------------------------------------------------

    def launch(
        self,
        shared: socket.socket,
        models_file: Path,
        secret: str,
        folder: Path,
        limits: Limits | None = None,
        handoff: socket.socket | None = None,
        deployment: str = "",
    ) -> Started:
        """A replica serving `models_file` on `shared` within `limits` (and connections
        handed over on `handoff`, for `deployment`): a spare if one is there, else fresh.
        Spares are not refilled here: call `fill` once the replica is ready."""
        limits = limits or Limits()
        spare = self._take_spare()
        if spare is not None:
            started = spare.started
            cgroup = self._confine(folder, started.process.pid, limits)
            own = self.enforcement.for_process(limits, cgroup)
            message = json.dumps(
                {
                    "models": str(models_file),
                    "secret": secret,
                    "limits": own.to_json(),
                    "deployment": deployment,
                }
            ).encode()
            fds = [shared.fileno()] + ([handoff.fileno()] if handoff is not None else [])
            try:
                socket.send_fds(spare.channel, [message], fds)
                spare.channel.close()
                return Started(started.process, started.private_port, started.log, limits, cgroup)
            except OSError:
                spare.channel.close()
        return self._spawner.call(
            lambda: self._fresh(shared, models_file, secret, folder, limits, handoff, deployment)
        ).result()

    def _confine(self, folder: Path, pid: int, limits: Limits) -> Path | None:
        return self.enforcement.confine(f"modelhub-{folder.name}-{pid}", pid, limits)

    def _fresh(
        self,
        shared: socket.socket,
        models_file: Path,
        secret: str,
        folder: Path,
        limits: Limits,
        handoff: socket.socket | None,
        deployment: str,
    ) -> Started:
        private = bind("127.0.0.1", 0)
        log = self._next_log(folder)
        limited: list[str] = []
        if not limits.empty:
            # Imported before the limits apply, as in a spare, so both count the same.
            imports = self.settings.warm_imports if limits.memory is not None else ()
            own = self.enforcement.for_process(limits, self.enforcement.cgroup_expected(limits))
            limited = [
                "--limits",
                json.dumps(own.to_json()),
                *(option for module in imports for option in ("--warm", module)),
            ]
        passed: tuple[int, ...] = (shared.fileno(), private.fileno())
        extra = ["--deployment", deployment]
        if handoff is not None:
            passed += (handoff.fileno(),)
            extra += ["--handoff-fd", str(handoff.fileno())]
        try:
            process = self._popen(
                [
                    "--shared-fd",
                    str(shared.fileno()),
                    "--private-fd",
                    str(private.fileno()),
                    "--models",
                    str(models_file),
                    *limited,
                    *extra,
                ],
                passed,
                log,
                secret,
            )
            cgroup = self._confine(folder, process.pid, limits)
            return Started(process, private.getsockname()[1], log, limits, cgroup)
        finally:
            private.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spares, self._spares = self._spares, []
        for spare in spares:
            # A spare holds nothing yet: no need to wait for it to finish importing.
            spare.channel.close()
            spare.started.process.kill()
            spare.started.process.wait()
        self._spawner.close()
