"""What holding a replica to its resources costs at its start.

A replica group of the tabular model A (32 -> 64 -> 10 MLP) is started and stopped,
rounds alternating between no limits (the reference, measured in the same run) and
`resources: {memory: 512Mi, cpus: 1}` (on this machine: the fallback, CPU affinity and
an address-space limit, see modelhub.limits). Reported per side: median seconds from
launch to ready, and median CPU-seconds the replica used to get there (user + system,
from /proc/PID/stat: less moved by a busy machine than wall time). Fresh replicas (no
warm spare), so that the limited one's imports before the limit are counted. Also the
cost of `limit_self` alone, in microseconds, in a process that imported torch.

Goal (issue 16, lane resources): limits add under 5 % to a replica's start.

    python bench/bench_resource_limits.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import emit, log, median, rounded
from modelhub.domain.resources import DeploymentResources
from modelhub.limits import Enforcement
from modelhub.serving.host import ServedModel, ServedVersion
from modelhub.serving.launcher import ReplicaLauncher, ReplicaSettings
from modelhub.serving.replicas import ReplicaGroup

GOAL_RATIO = 1.05
LIMITED = DeploymentResources(memory=512 * 2**20, cpus=1)
TICKS = os.sysconf("SC_CLK_TCK")
LIMIT_SELF = """
import time, torch
from modelhub.limits import Limits, limit_self
t = time.perf_counter(); limit_self(Limits(memory=2**30, cpus=(0,))); print(time.perf_counter() - t)
"""


def write_model(folder: Path) -> Path:
    import numpy as np
    import torch

    from modelhub.networks import tabular

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    model = tabular.build_model(32, [64], 10)
    features = [f"f{i}" for i in range(32)]
    classes = [f"c{i}" for i in range(10)]
    tabular.write_output(folder, model, features, "label", classes, [64], np.zeros(32), np.ones(32))
    return folder


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_once(
    launcher: ReplicaLauncher, folder: Path, limits: DeploymentResources | None
) -> tuple[float, float]:
    models = [ServedModel("a", (ServedVersion(1, folder, 100),))]
    group = ReplicaGroup("limited" if limits else "free", models, launcher, resources=limits)
    began = time.perf_counter()
    try:
        group.start(1)
        elapsed = time.perf_counter() - began
        return elapsed, cpu_seconds(group.replicas[0].pid)
    finally:
        group.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two rounds (smoke test)")
    parser.add_argument(
        "--resources", default=LIMITED.model_dump_json(), help="the limited side's, as JSON"
    )
    args = parser.parse_args()
    limits = DeploymentResources.model_validate_json(args.resources)
    rounds = 2 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as work:
        root = Path(work)
        folder = write_model(root / "model")
        settings = ReplicaSettings(workdir=root / "replicas", warm_imports=("torch",))
        launcher = ReplicaLauncher(settings)
        sides: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        try:
            for index in range(rounds):
                for limited in (index % 2 == 0, index % 2 != 0):
                    chosen = limits if limited else None
                    sides[limited].append(start_once(launcher, folder, chosen))
                log(f"round {index + 1}/{rounds}: {sides[False][-1]} vs {sides[True][-1]}")
        finally:
            launcher.close()
    own = [
        float(subprocess.run([sys.executable, "-c", LIMIT_SELF], capture_output=True,
                             text=True, check=True).stdout)
        for _ in range(3 if args.quick else 5)
    ]  # fmt: skip
    free_wall, limited_wall = (median([s[0] for s in sides[k]]) for k in (False, True))
    free_cpu, limited_cpu = (median([s[1] for s in sides[k]]) for k in (False, True))
    emit(
        {
            "bench": "resource_limits",
            "mechanism": Enforcement.detect().mechanism,
            "resources": limits.as_record(),
            "rounds": rounds,
            "start_s_free": rounded(free_wall),
            "start_s_limited": rounded(limited_wall),
            "start_ratio": rounded(limited_wall / free_wall),
            "cpu_s_free": rounded(free_cpu),
            "cpu_s_limited": rounded(limited_cpu),
            "cpu_ratio": rounded(limited_cpu / free_cpu),
            "limit_self_us": rounded(median(own) * 1e6, 1),
            "goal_ratio": GOAL_RATIO,
            "met": limited_cpu / free_cpu <= GOAL_RATIO,
        }
    )


if __name__ == "__main__":
    main()
