"""What the training benchmarks share: a tiny dataset, a tiny pipeline, waiting on runs.

Unlike benchlib this imports modelhub, so the peer venvs never import it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from benchlib import log
from modelhub.domain.auth import Caller, Role
from modelhub.domain.runs import FINAL, Run
from modelhub.services import Services
from modelhub.training.executor import child_pids

CALLER = Caller(name="bench", role=Role.ADMIN)


def write_blobs_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Two well separated 2-D blobs, label 0/1: trains to high accuracy in one epoch."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 2
    a = rng.normal(labels * 3.0, 1.0)
    b = rng.normal(-labels * 3.0, 1.0)
    lines = [f"{x:.3f},{y:.3f},{c}" for x, y, c in zip(a, b, labels, strict=True)]
    path.write_text("a,b,label\n" + "\n".join(lines) + "\n")


def pipeline_yaml(
    name: str,
    dataset: str,
    result_model: str,
    *,
    cpus: float = 1.0,
    memory: str = "2GiB",
    log_every: int = 10,
    batch_size: int = 16,
) -> str:
    """A one-epoch tabular_classifier pipeline with no extra checkpoints."""
    return f"""
name: {name}
type: pre_training
trainer: tabular_classifier
datasets: [{dataset}]
max_epochs: 1
hyperparameters: {{batch_size: {batch_size}, log_every: {log_every}}}
resources: {{cpus: {cpus}, memory: {memory}}}
result_model: {{name: {result_model}}}
"""


def wait_final(
    services: Services, run_ids: list[int], timeout: float, poll: float = 0.05
) -> list[Run]:
    """Poll until every run is completed, failed or cancelled; raise after `timeout` s."""
    deadline = time.monotonic() + timeout
    left = set(run_ids)
    done: dict[int, Run] = {}
    while left:
        for run_id in list(left):
            run = services.training.get_run(CALLER, run_id)
            if run.status in FINAL:
                done[run_id] = run
                left.discard(run_id)
        if not left:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(left)} runs not finished after {timeout:.0f} s")
        time.sleep(poll)
    return [done[run_id] for run_id in run_ids]


def first_metric_at(run_dir: Path) -> float | None:
    """The "at" (unix time) of the first line of the worker's metrics.jsonl."""
    try:
        with open(run_dir / "metrics.jsonl") as source:
            line = source.readline()
        return float(json.loads(line)["at"])
    except (OSError, ValueError, KeyError):
        return None


def idle_warm_worker(parent: int) -> int | None:
    """PID of a warm worker of `parent` that has imported torch and waits on stdin.

    A warm worker is `python -m modelhub.training.worker --warm`; it is ready once
    it blocks in read(2) on fd 0, which /proc/PID/syscall shows as "0 0x0 ...".
    """
    for pid in child_pids(parent):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as source:
                argv = source.read().split(b"\0")
            if b"--warm" not in argv:
                continue
            with open(f"/proc/{pid}/syscall") as source:
                call = source.read().split()
        except OSError:
            continue
        if call[:2] == ["0", "0x0"]:
            return pid
    return None


def wait_warm_worker(parent: int, timeout: float = 60.0) -> bool:
    """Wait until `parent` has an idle warm worker; False (and a log line) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if idle_warm_worker(parent) is not None:
            return True
        time.sleep(0.05)
    log(f"no idle warm worker under pid {parent} after {timeout:.0f} s")
    return False
