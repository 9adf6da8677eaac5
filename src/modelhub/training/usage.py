"""What an attempt used, measured: CPU-seconds of the worker's process tree and the
GPU-seconds of the devices it held.

Two measurements, one authoritative:
- the worker writes `usage.json` when its job ends (`os.times()` of itself and the
  children it waited for, from the job's start: a warm worker's warm-up is not the
  run's), which is exact for every attempt that ends by itself;
- the scheduler samples the tree with psutil while it runs (each live process's user
  and system time plus what its reaped children used), which is what remains of an
  attempt that was killed (memory limit, cancel, a stopping server).
GPU-seconds are the devices given to the attempt times its wall time: a GPU held by a
run is paid for whether its kernels are busy or not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

USAGE_FILE = "usage.json"


def process_cpu_seconds() -> float:
    """CPU-seconds of this process and the children it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def tree_cpu_seconds(pid: int) -> float:
    """CPU-seconds of `pid` and its live descendants, with what their reaped children
    used (0 when `pid` is gone)."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in tree:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def write_usage(run_dir: Path, cpu_seconds: float, wall_seconds: float) -> None:
    """The worker's own figure, written when its job ends (temporary name, then rename)."""
    tmp = run_dir / "usage.tmp"
    tmp.write_text(json.dumps({"cpu_seconds": cpu_seconds, "wall_seconds": wall_seconds}))
    tmp.replace(run_dir / USAGE_FILE)


def read_usage(run_dir: Path) -> float | None:
    """The CPU-seconds the worker reported at exit, or None where it wrote none."""
    try:
        data = json.loads((run_dir / USAGE_FILE).read_text())
        return max(0.0, float(data["cpu_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
