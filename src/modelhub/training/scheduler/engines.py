"""The training engines a scheduler hands runs to, and how it picks one for a run.

An engine is an executor plus what it offers: this host's worker processes
(`local`), or a Ray cluster (`ray`). The choice (the plan's `selectOptimalEngine`)
is made when a run is admitted, from its spec and the engines' free capacity:

- a run that names an engine (`engine: ray`) goes there or waits;
- otherwise the first engine, in preference order (local first: warm workers start
  in under a second, no cluster hop), whose free capacity fits the run's whole need now;
- a distributed run needs every worker's share at once (gang scheduling): its need is
  workers x resources, and it is started whole or kept queued, never in part.

`start_estimate` answers "when would it start": a replay of the engine's running runs
ending (at their ETA) and the queued runs ahead starting as they fit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from modelhub.domain.runs import RunResources
from modelhub.training.executor import Executor
from modelhub.training.scheduler.capacity import Capacity

PREFERENCE = ("local", "ray")


@dataclass
class TrainingEngine:
    """One engine the scheduler can start attempts on.

    `refresh`, where the engine's capacity can change (a cluster), re-reads it and
    returns (capacity, nodes), raising `Unavailable` when the engine cannot be reached.
    `requeue_unreachable`: when a start finds the engine unreachable, keep the run queued
    (True) or fail it with the reason (False).
    """

    name: str
    executor: Executor
    capacity: Capacity
    nodes: int = 1
    online: bool = True
    reason: str | None = None
    refresh: Callable[[], tuple[Capacity, int]] | None = None
    requeue_unreachable: bool = True
    address: str | None = None  # a cluster's, as `engines list` shows it


def whole_need(per_worker: RunResources, workers: int) -> RunResources:
    """What a run of `workers` data-parallel workers reserves at once."""
    return RunResources(
        cpus=per_worker.cpus * workers,
        memory=per_worker.memory * workers,
        gpus=per_worker.gpus * workers,
    )


def ever_fits(need: RunResources, capacities: Mapping[str, Capacity], pinned: str | None) -> bool:
    """Whether some engine the run may use could hold it when idle."""
    return any(
        capacity.fits(need)
        for name, capacity in capacities.items()
        if pinned is None or name == pinned
    )


def choose_engine(
    need: RunResources,
    pinned: str | None,
    free: dict[str, Capacity],
    online: Iterable[str],
) -> str | None:
    """The engine to start a run on now, or None to keep it queued.

    `free` is each engine's capacity less what its running attempts hold; an engine not
    `online` is passed over (a run pinned to it waits).
    """
    up = set(online)
    candidates = [pinned] if pinned is not None else sorted(free, key=_preference)
    for name in candidates:
        if name in up and name in free and free[name].fits(need):
            return name
    return None


def _preference(name: str) -> tuple[int, str]:
    return (PREFERENCE.index(name) if name in PREFERENCE else len(PREFERENCE), name)


@dataclass(frozen=True)
class Holding:
    """A run on an engine's timeline: what it holds and for how many more seconds."""

    need: RunResources
    seconds: float


def start_estimate(
    capacity: Capacity,
    running: Sequence[Holding],
    ahead: Sequence[Holding],
    need: RunResources,
) -> float | None:
    """Seconds from now until a run needing `need` could start; None if it never fits.

    Running runs end after their `seconds`; the queued runs `ahead` start first-in
    first-out as soon as they fit, and hold their share for their `seconds`.
    """
    if not capacity.fits(need):
        return None
    ends: list[tuple[float, RunResources]] = [(h.seconds, h.need) for h in running]
    clock = 0.0
    for queued in [*ahead, Holding(need, 0.0)]:
        if not capacity.fits(queued.need):
            continue  # it can never start here: it does not hold anything up
        while not _free_at(capacity, ends, clock).fits(queued.need):
            later = sorted(t for t, _ in ends if t > clock)
            if not later:
                return None
            clock = later[0]
        ends.append((clock + queued.seconds, queued.need))
    return clock


def _free_at(
    capacity: Capacity, ends: Sequence[tuple[float, RunResources]], clock: float
) -> Capacity:
    return capacity.minus(need for end, need in ends if end > clock)
