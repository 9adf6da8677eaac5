"""The servers that share one database: what each offers and whether it is alive."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from modelhub.domain.pipelines import parse_memory
from modelhub.domain.records import Record


class Host(Record):
    """One `modelhub server` as it registered itself, and its last heartbeat.

    A host whose heartbeat is older than the dead-after time is dead: its runs are
    taken over by lease and its deployments placed on a live host."""

    name: str
    address: str
    port: int
    pid: int
    cpus: float = Field(ge=0)
    memory_bytes: int = Field(ge=0)
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None  # a clean stop; None while it runs or after a kill
    alive: bool = False  # filled in by the service from heartbeat_at and the dead-after time
    deployments: int = 0  # how many deployments are placed on it

    def is_alive(self, now: datetime, dead_after: timedelta) -> bool:
        return self.stopped_at is None and now - self.heartbeat_at <= dead_after


@dataclass(frozen=True)
class Placed:
    """A live deployment as placement counts it: where it runs and what it asks for."""

    host: str | None
    resources: dict[str, Any]
    replicas: int


def _asked(resources: dict[str, Any], replicas: int) -> tuple[float, int]:
    """CPUs and memory bytes a deployment asks for over its replicas: one CPU per
    replica when it names none, and memory only when it names some."""
    cpus, memory = 1.0, 0
    with contextlib.suppress(TypeError, ValueError):
        cpus = float(resources.get("cpus", 1.0))
    if resources.get("memory") is not None:
        with contextlib.suppress(ValueError):
            memory = parse_memory(resources["memory"])
    return cpus * max(replicas, 1), memory * max(replicas, 1)


def choose_host(live: list[Host], placed: list[Placed], wanted: Placed) -> str | None:
    """The live host with the most free CPU (then memory, then fewest deployments, then
    name) once what is placed on each is counted; None when no host lives.

    Capacity guides, it does not refuse: a deployment larger than every host still goes
    to the one with most room, where its resource limits apply."""
    if not live:
        return None
    used: dict[str, list[float]] = {h.name: [0.0, 0.0, 0.0] for h in live}
    for item in placed:
        if item.host in used:
            cpus, memory = _asked(item.resources, item.replicas)
            used[item.host][0] += cpus
            used[item.host][1] += memory
            used[item.host][2] += 1
    cpus, memory = _asked(wanted.resources, wanted.replicas)

    def room(host: Host) -> tuple[float, float, float, str]:
        cpu_used, memory_used, count = used[host.name]
        free_cpus = host.cpus - cpu_used - cpus
        free_memory = host.memory_bytes - memory_used - memory
        return (-free_cpus, -free_memory, count, host.name)

    return min(live, key=room).name
