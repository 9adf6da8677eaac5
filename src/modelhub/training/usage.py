"""The worker's own account of what its attempt used, written when its job ends.

`usage.json` holds `os.times()` of the worker and the children it waited for, from
the job's start (a warm worker's warm-up is not the run's): exact for every attempt
that ends by itself. While the attempt runs, and for one that is killed (memory
limit, cancel, a stopping server), its use is what the scheduler's resource samples
measured (training/scheduler/resources.py): one sampler serves both the run's cost
and the monitoring figures. GPU-seconds for cost are the devices given to the
attempt times its wall time: a GPU held by a run is paid for whether its kernels are
busy or not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

USAGE_FILE = "usage.json"


def process_cpu_seconds() -> float:
    """CPU-seconds of this process and the children it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


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
