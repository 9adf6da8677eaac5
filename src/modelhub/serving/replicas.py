"""A replica group: one deployment's endpoint socket and the processes that serve it.

The group binds the endpoint (127.0.0.1:port) once and hands the socket to every
replica it starts. The first replica to be ready opens it (listens); from then on
replicas come and go (a restart, a scale step) while the port stays open and the
kernel's accept queue keeps waiting connections. Before any replica is ready (a
deployment starting, or coming back after a server restart) the port refuses
connections at once rather than holding them unanswered. Each
replica also gets a private socket where the group probes and administers it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from modelhub.domain.resources import DeploymentResources
from modelhub.errors import Unavailable
from modelhub.limits import CgroupV2, Limits, choose_cpus, choose_gpus, memory_failure, mib
from modelhub.serving.host import ServedModel
from modelhub.serving.launcher import ReplicaLauncher, Started, bind

LIVENESS_FAILURES = 3
LOG_TAIL_BYTES = 2000


def _raise_load_failure(stats: dict[str, Any], memory: int | None) -> None:
    failed = [m for m in stats["models"] if m["state"] == "failed"]
    if failed:
        first = failed[0]
        reason = str(first["error"])
        if memory is not None and memory_failure(reason):
            reason = f"over its memory limit of {mib(memory)} ({reason}); raise resources.memory"
        raise Unavailable(
            f"{first['name']} version {first['version']} failed to load: {reason}",
            {"reason": first["error"], "version": first["version"], "memory_limit": memory},
        )


def log_tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""


class Replica:
    def __init__(self, started: Started, handoff: socket.socket | None = None) -> None:
        self.handoff = handoff  # where the data-plane listener hands it connections
        self.process = started.process
        self.private_port = started.private_port
        self.log = started.log
        self.limits = started.limits
        self.cgroup = started.cgroup
        self.started = time.monotonic()
        self.ready = False
        self.probe_failures = 0
        self.in_flight = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.private_port}"

    def exited(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        self.close_handoff()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)

    def close_handoff(self) -> None:
        if self.handoff is not None:
            self.handoff.close()

    def kill(self) -> None:
        self.close_handoff()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.release()

    def release(self) -> None:
        """Remove its cgroup, once it has exited (a cgroup with a process stays)."""
        if self.cgroup is not None and self.process.poll() is not None:
            CgroupV2.remove(self.cgroup)


class ReplicaGroup:
    """Processes serving the same models on one shared endpoint socket."""

    def __init__(
        self,
        name: str,
        models: list[ServedModel],
        launcher: ReplicaLauncher,
        port: int | None = None,
        resources: DeploymentResources | None = None,
    ) -> None:
        settings = launcher.settings
        self.launcher = launcher
        self.name = name
        self.models = models
        self.settings = settings
        self.secret = secrets.token_hex(16)
        self.lock = threading.RLock()
        self.replicas: list[Replica] = []
        self.resources = resources or DeploymentResources()
        self.restarts = 0
        self.last_exit: str | None = None
        self.folder = settings.workdir / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self._socket = self._bind(port)
        self.port: int = self._socket.getsockname()[1]
        # Connections the data-plane listener hands over go to the replicas in turn.
        self._takes_connections = settings.verify_socket is not None
        self._turn = 0
        self._http = httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0), trust_env=False)

    def _bind(self, port: int | None) -> socket.socket:
        if port:
            with contextlib.suppress(OSError):
                return bind(self.settings.bind_host, port)
        return bind(self.settings.bind_host, 0)

    @property
    def endpoint(self) -> str:
        return f"http://{self.settings.bind_host}:{self.port}"

    def hand_over(self, connection: socket.socket) -> None:
        """Give an accepted connection to the next ready replica (in turn, so that
        long-lived connections spread evenly); raises OSError when none can take it."""
        replicas = [r for r in list(self.replicas) if r.ready and r.handoff is not None]
        if not replicas:
            raise OSError(f"no replica of {self.name} takes connections now")
        self._turn += 1
        for step in range(len(replicas)):
            replica = replicas[(self._turn + step) % len(replicas)]
            assert replica.handoff is not None
            try:
                socket.send_fds(replica.handoff, [b"c"], [connection.fileno()])
                return
            except OSError:
                continue  # gone, or its queue is full: the next one
        raise OSError(f"no replica of {self.name} took the connection")

    # -- processes ------------------------------------------------------------

    def _models_file(self) -> Path:
        path = self.folder / "models.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps([model.to_json() for model in self.models]))
        temporary.replace(path)
        return path

    def _limits(self) -> Limits:
        """The next replica's limits: its CPUs and GPUs chosen further along each time."""
        wanted = self.resources
        if not wanted.limited:
            return Limits()
        turn = self.launcher.next_turn()
        return Limits(
            memory=wanted.memory,
            cpus=choose_cpus(wanted.cpus, turn, self.launcher.cpus),
            cpu_quota=wanted.cpus,
            gpus=choose_gpus(wanted.gpus, turn, self.launcher.gpus),
        )

    def spawn(self) -> Replica:
        ours = theirs = None
        if self._takes_connections:  # its own channel for handed-over connections
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            ours.setblocking(False)
            theirs.set_inheritable(True)
        try:
            started = self.launcher.launch(
                self._socket,
                self._models_file(),
                self.secret,
                self.folder,
                self._limits(),
                handoff=theirs,
                deployment=self.name,
            )
        except BaseException:
            if ours is not None:
                ours.close()
            raise
        finally:
            if theirs is not None:
                theirs.close()  # the replica has its copy
        replica = Replica(started, ours)
        self.replicas.append(replica)
        return replica

    def start(self, count: int) -> None:
        """Start `count` replicas and wait until all serve, or raise with the reason."""
        with self.lock:
            try:
                fresh = [self.spawn() for _ in range(count)]
                self.wait_ready(fresh)
            finally:
                self.launcher.fill()  # now, not while they load (see the launcher)

    def wait_ready(self, replicas: list[Replica]) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout
        waiting = list(replicas)
        while waiting:
            for replica in list(waiting):
                self._raise_if_dead(replica)
                stats = self._stats(replica)
                if stats is None:
                    continue
                _raise_load_failure(stats, replica.limits.memory)
                if stats["ready"]:
                    replica.ready = True
                    waiting.remove(replica)
            if waiting and time.monotonic() > deadline:
                raise Unavailable(
                    f"replicas of {self.name} were not ready after "
                    f"{self.settings.ready_timeout:g} s",
                    {"deployment": self.name},
                )
            if waiting:
                time.sleep(0.02)

    def _raise_if_dead(self, replica: Replica) -> None:
        code = replica.exited()
        if code is None:
            return
        self.replicas = [r for r in self.replicas if r is not replica]
        replica.close_handoff()
        tail = log_tail(replica.log).splitlines()
        reason = tail[-1] if tail else f"exit code {code}"
        memory = replica.limits.memory
        over = replica.cgroup is not None and CgroupV2.oom_killed(replica.cgroup)
        if memory is not None and (over or memory_failure(reason)):
            reason = f"over its memory limit of {mib(memory)} ({reason}); raise resources.memory"
        replica.release()
        raise Unavailable(
            f"a replica of {self.name} exited with code {code}: {reason}",
            {"exit_code": code, "log": "\n".join(tail[-20:])},
        )

    def _stats(self, replica: Replica) -> dict[str, Any] | None:
        return self._get(replica, "/_replica/stats")

    def _get(self, replica: Replica, path: str) -> dict[str, Any] | None:
        try:
            response = self._http.get(replica.url + path, headers={"x-replica-secret": self.secret})
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        data: dict[str, Any] = response.json()
        return data

    # -- changes --------------------------------------------------------------

    def apply(self, models: list[ServedModel]) -> None:
        """Serve `models` on every replica; returns once all have loaded them."""
        with self.lock:
            self.models = models
            self._models_file()
            body = json.dumps({"models": [model.to_json() for model in models]})
            for replica in list(self.replicas):
                if not replica.ready:
                    # Restarted and still loading: it listens (and can take the change)
                    # once loaded; a change sent before would be refused, not queued.
                    self.wait_ready([replica])
                try:
                    response = self._http.put(
                        replica.url + "/_replica/models",
                        content=body,
                        headers={"x-replica-secret": self.secret},
                        timeout=self.settings.ready_timeout,
                    )
                except httpx.HTTPError as exc:
                    self._raise_if_dead(replica)
                    raise Unavailable(
                        f"replica {replica.pid} of {self.name} did not take the change: {exc}",
                        {"deployment": self.name},
                    ) from exc
                if response.status_code != 200:
                    raise Unavailable(
                        f"replica {replica.pid} of {self.name} refused the change: "
                        f"{response.text[:500]}",
                        {"deployment": self.name},
                    )
                _raise_load_failure(response.json(), replica.limits.memory)

    def wait_drained(self) -> bool:
        """True once no replica holds a retired version with requests still inside."""
        deadline = time.monotonic() + self.settings.drain_seconds
        while time.monotonic() < deadline:
            loads = [self._get(r, "/_replica/load") for r in list(self.replicas)]
            if all(load is None or load["draining"] == 0 for load in loads):
                return True
            time.sleep(0.02)
        return False

    def scale(self, count: int) -> None:
        with self.lock:
            if count > len(self.replicas):
                self.start(count - len(self.replicas))
                return
            surplus = sorted(self.replicas, key=lambda r: r.in_flight)[: len(self.replicas) - count]
            for replica in surplus:
                self.replicas.remove(replica)
            self._stop_all(surplus)

    # -- watching -------------------------------------------------------------

    def check(self) -> list[str]:
        """Restart replicas that died or stopped answering; returns what happened."""
        events: list[str] = []
        with self.lock:
            for replica in list(self.replicas):
                code = replica.exited()
                if code is None:
                    load = self._get(replica, "/_replica/load")
                    if load is not None:
                        replica.probe_failures = 0
                        replica.in_flight = int(load["in_flight"])
                        replica.ready = bool(load["ready"])
                        continue
                    starting = time.monotonic() - replica.started < self.settings.ready_timeout
                    replica.probe_failures += 1
                    if starting or replica.probe_failures < LIVENESS_FAILURES:
                        continue
                    replica.kill()
                    code = replica.exited()
                    events.append(f"replica {replica.pid} stopped answering and was killed")
                self.replicas.remove(replica)
                replica.close_handoff()
                self.restarts += 1
                self.last_exit = f"replica {replica.pid} exited with code {code}"
                if replica.cgroup is not None and CgroupV2.oom_killed(replica.cgroup):
                    memory = replica.limits.memory or 0
                    self.last_exit += f", killed over its memory limit of {mib(memory)}"
                replica.release()
                events.append(f"{self.last_exit}; restarted")
                self.spawn()
            if all(replica.ready for replica in self.replicas):
                self.launcher.fill()  # restarted ones have loaded: replace the spares they took
        return events

    def in_flight(self) -> int:
        return sum(replica.in_flight for replica in self.replicas)

    def stats(self) -> list[tuple[int, dict[str, Any]]]:
        found = []
        for replica in list(self.replicas):
            stats = self._stats(replica)
            if stats is not None:
                found.append((replica.pid, stats))
        return found

    # -- the end --------------------------------------------------------------

    def _stop_all(self, replicas: list[Replica]) -> None:
        for replica in replicas:
            replica.terminate()
        deadline = time.monotonic() + self.settings.drain_seconds
        for replica in replicas:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                replica.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                replica.kill()
            replica.release()

    def stop(self) -> None:
        with self.lock:
            replicas, self.replicas = self.replicas, []
            self._stop_all(replicas)
            self._socket.close()
            self._http.close()
