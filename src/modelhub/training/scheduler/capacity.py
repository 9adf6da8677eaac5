"""What this host offers training, and what of it the running workers leave free."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from modelhub.domain.runs import RunResources


@dataclass(frozen=True)
class Capacity:
    cpus: float
    memory: int
    gpus: int

    def fits(self, need: RunResources) -> bool:
        return need.cpus <= self.cpus and need.memory <= self.memory and need.gpus <= self.gpus

    def minus(self, used: Iterable[RunResources]) -> Capacity:
        taken = list(used)
        return Capacity(
            cpus=self.cpus - sum(r.cpus for r in taken),
            memory=self.memory - sum(r.memory for r in taken),
            gpus=self.gpus - sum(r.gpus for r in taken),
        )


def host_capacity(cpus: float | None, memory: int | None, gpus: int | None) -> Capacity:
    """What this host offers training, each part overridable by settings."""
    if gpus is None:
        gpus = count_gpus()
    return Capacity(
        cpus=cpus if cpus is not None else float(os.cpu_count() or 1),
        memory=memory
        if memory is not None
        else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        gpus=gpus,
    )


def count_gpus() -> int:
    """NVIDIA GPUs the driver shows, read without importing torch (server start-up stays fast)."""
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        pass
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.splitlines() if line.startswith("GPU "))


def free_gpus(total: int, taken: Iterable[int], count: int) -> list[int]:
    """The first `count` GPU indices no running worker holds."""
    held = set(taken)
    return [g for g in range(total) if g not in held][:count]
