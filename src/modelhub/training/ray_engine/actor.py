"""What runs on the Ray cluster for one attempt: a detached actor that owns the worker.

The actor starts the training worker (`python -m modelhub.training.worker`, or for a
distributed job the Ray Train driver `modelhub.training.ray_engine.train`) as its
child, in a session of its own, writing the run's log; the worker dies with the
actor (PR_SET_PDEATHSIG), so killing the actor stops the run. The actor is named
after the run and detached: it outlives the server that created it, and a
restarted server finds it by name and waits on it instead of starting the run again.

When the worker exits, the actor writes the attempt's outcome (exit code and the
result and usage files the worker wrote) to `ray-outcome.json` in the run folder,
answers whoever waits, and lingers `LINGER_SECONDS` for a server to collect it; then
it exits, releasing its resources. A server that comes back later finds the outcome
file instead. The outcome carries the result because a new attempt's launch clears
the run folder's result before the executor is asked to start it.

This module is imported on the cluster's nodes: standard library and modelhub's
lightest modules only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelhub.processes import Spawner
from modelhub.training.executor import tree_memory

OUTCOME_FILE = "ray-outcome.json"
RAY_JOB_FILE = "job.ray.json"
# What the worker writes that the outcome keeps, should a new attempt's launch clear it.
KEPT_FILES = ("result.json", "usage.json")
KEPT_GLOBS = ("usage.rank-*.json",)
LINGER_SECONDS = 60.0
STOP_SECONDS = 10.0


def installation_tag(runs_dir: Path) -> str:
    """A short digest of the runs folder: two modelhub installations on one cluster
    (each with its own run ids) never take each other's actors."""
    return hashlib.sha256(str(runs_dir).encode()).hexdigest()[:12]


def actor_name(run_id: int, runs_dir: Path) -> str:
    return f"run-{run_id}-{installation_tag(runs_dir)}"


def host_token() -> str:
    """Equal in two processes exactly when they see the same process ids: same boot of
    the same machine, same pid namespace. Where it differs, a pid from there means
    nothing here."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return f"unknown/{os.getpid()}"


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_outcome(run_dir: Path) -> dict[str, Any] | None:
    """The outcome an attempt's actor left and no server collected, if any."""
    try:
        data = json.loads((run_dir / OUTCOME_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("code"), int) else None


def restore_outcome(run_dir: Path, outcome: dict[str, Any]) -> None:
    """Put back the result and usage files the outcome kept where they are missing."""
    for name, text in (outcome.get("files") or {}).items():
        target = run_dir / Path(name).name
        if isinstance(text, str) and not target.exists():
            write_atomically(target, text)


def _kept_files(run_dir: Path) -> dict[str, str]:
    paths = [run_dir / name for name in KEPT_FILES]
    paths += [path for pattern in KEPT_GLOBS for path in sorted(run_dir.glob(pattern))]
    kept = {}
    for path in paths:
        with contextlib.suppress(OSError):
            kept[path.name] = path.read_text()
    return kept


def worker_environment(actor: Mapping[str, str]) -> dict[str, str]:
    """The actor's environment less what Ray set for its own worker (RAY_*, its
    debugger hook): the training worker is no Ray worker, and a Ray it starts itself
    (Flower's simulation, the Ray Train driver) must not take these for its own."""
    own = {k: v for k, v in actor.items() if not k.startswith("RAY_")}
    if own.get("PYTHONBREAKPOINT", "").startswith("ray."):
        del own["PYTHONBREAKPOINT"]
    return own


class AttemptActor:
    """One attempt of a run on the cluster (made a Ray actor by the executor).

    `command` is the module the child runs (`modelhub.training.worker`, or the Ray
    Train driver); its arguments are the job file and, for the driver, the
    cluster's address.
    """

    def __init__(self, run_id: int, attempt: int, job_file: str, log_file: str, module: str):
        import ray

        self.run_id, self.attempt = run_id, attempt
        self.run_dir = Path(job_file).parent
        self.started = time.time()
        self.node = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        self._ended = threading.Event()
        self._outcome: dict[str, Any] | None = None
        job = json.loads(Path(job_file).read_text())
        # The GPUs Ray gave this actor (its CUDA_VISIBLE_DEVICES), not the server's idea of them.
        job["gpus"] = [str(gpu) for gpu in ray.get_gpu_ids()]
        own_job = self.run_dir / RAY_JOB_FILE
        write_atomically(own_job, json.dumps(job, indent=2))
        arguments = [str(own_job)]
        if module != "modelhub.training.worker":
            arguments.append(ray.get_runtime_context().gcs_address)
        with open(log_file, "a") as log:
            log.write(f"on Ray node {self.node} (actor pid {os.getpid()})\n")
        # Forked from a thread that lives as long as the actor: the worker's parent-death
        # signal follows the forking thread, not the process.
        self._spawner = Spawner()
        self._process = self._spawner.call(
            lambda: self._spawn([sys.executable, "-m", module, *arguments], log_file)
        ).result()
        threading.Thread(target=self._watch, name="modelhub-attempt", daemon=True).start()

    def _spawn(self, command: list[str], log_file: str) -> subprocess.Popen[bytes]:
        environment = worker_environment(os.environ) | {"MODELHUB_WORKER_PARENT": str(os.getpid())}
        with open(log_file, "ab") as log:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=environment,
            )

    def _watch(self) -> None:
        code = self._process.wait()
        outcome = {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "code": code,
            "files": _kept_files(self.run_dir),
        }
        with contextlib.suppress(OSError):
            write_atomically(self.run_dir / OUTCOME_FILE, json.dumps(outcome))
        self._outcome = outcome
        self._ended.set()
        time.sleep(LINGER_SECONDS)  # a server collects it and kills this actor meanwhile
        os._exit(0)  # nobody came: the outcome file stays, the cluster gets its resources back

    def describe(self) -> dict[str, Any]:
        code = self._outcome["code"] if self._outcome is not None else None
        return {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "pid": self._process.pid,
            "host": host_token(),
            "node": self.node,
            "started": self.started,
            "code": code,
        }

    def wait(self) -> dict[str, Any]:
        """The attempt's outcome, once its worker has exited."""
        self._ended.wait()
        assert self._outcome is not None
        return self._outcome

    def stop(self) -> None:
        """SIGKILL the worker's session, and wait until its outcome is written."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._ended.wait(STOP_SECONDS)

    def memory(self) -> int:
        return tree_memory(self._process.pid) if not self._ended.is_set() else 0
