"""What this host offers training, and what of it the running workers leave free."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from modelhub.domain.runs import RunResources
from modelhub.limits import count_gpus

__all__ = ["Capacity", "count_gpus", "free_gpus", "host_capacity"]


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


def free_gpus(total: int, taken: Iterable[int], count: int) -> list[int]:
    """The first `count` GPU indices no running worker holds."""
    held = set(taken)
    return [g for g in range(total) if g not in held][:count]
