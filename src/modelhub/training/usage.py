"""The worker's own account of what its attempt used, written when its job ends.

`usage.json` holds `os.times()` of the worker and the children it waited for, from
the job's start (a warm worker's warm-up is not the run's): exact for every attempt
that ends by itself. While the attempt runs, and for one that is killed (memory
limit, cancel, a stopping server), its use is what the scheduler's resource samples
measured (training/scheduler/resources.py): one sampler serves both the run's cost
and the monitoring figures. GPU-seconds for cost are the devices given to the
attempt times its wall time: a GPU held by a run is paid for whether its kernels are
busy or not.

In a distributed run every rank writes its own figure (`usage.rank-K.json`), and the
attempt's figure is their sum once every rank has written one: a rank killed before
it could leaves the sampled figure standing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

USAGE_FILE = "usage.json"
RANK_USAGE_GLOB = "usage.rank-*.json"


def process_cpu_seconds() -> float:
    """CPU-seconds of this process and the children it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def write_usage(
    run_dir: Path,
    cpu_seconds: float,
    wall_seconds: float,
    rank: int | None = None,
    world_size: int = 1,
) -> None:
    """The worker's own figure, written when its job ends (temporary name, then rename);
    with a `rank`, that rank's figure of a `world_size`-rank run."""
    name = usage_name(rank)
    figure: dict[str, float] = {"cpu_seconds": cpu_seconds, "wall_seconds": wall_seconds}
    if rank is not None:
        figure |= {"rank": rank, "world_size": world_size}
    tmp = run_dir / f"{name}.tmp"
    tmp.write_text(json.dumps(figure))
    tmp.replace(run_dir / name)


def usage_name(rank: int | None) -> str:
    """The file of a worker's figure: one per rank in a distributed run."""
    return USAGE_FILE if rank is None else f"usage.rank-{rank}.json"


def clear_usage(run_dir: Path) -> None:
    """Remove an earlier attempt's figures, so that they are never read as this one's."""
    (run_dir / USAGE_FILE).unlink(missing_ok=True)
    for old in run_dir.glob(RANK_USAGE_GLOB):
        old.unlink(missing_ok=True)


def read_usage(run_dir: Path) -> float | None:
    """The CPU-seconds the worker reported at exit (summed over the ranks of a distributed
    run when every rank reported), or None where that figure is missing or unreadable."""
    try:
        if (run_dir / USAGE_FILE).exists():
            return _cpu_seconds(json.loads((run_dir / USAGE_FILE).read_text()))
        figures = [json.loads(path.read_text()) for path in run_dir.glob(RANK_USAGE_GLOB)]
        if not figures:
            return None
        ranks = {int(figure["rank"]) for figure in figures}
        if ranks != set(range(int(figures[0]["world_size"]))):
            return None
        return sum(_cpu_seconds(figure) for figure in figures)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cpu_seconds(figure: dict[str, Any]) -> float:
    return max(0.0, float(figure["cpu_seconds"]))
