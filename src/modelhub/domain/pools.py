"""Shared model pools: where small deployments are served together (`deploy --pool`).

One pool exists, `shared`; its replica count and per-replica memory budget are
settings (`pool_replicas`, `pool_memory`).
"""

from __future__ import annotations

from modelhub.domain.records import Record
from modelhub.errors import InvalidInput, NotFound

SHARED_POOL = "shared"
POOLS = (SHARED_POOL,)


def check_pool(name: str) -> str:
    """`name` if it names a pool, else NotFound naming the pools there are."""
    if name not in POOLS:
        raise NotFound(
            f"no pool named {name!r}; pools: {', '.join(POOLS)}",
            {"field": "pool", "pool": name, "pools": list(POOLS)},
        )
    return name


def check_fits(ref: str, size: int, pool: str, budget: int) -> None:
    """A version whose files pass the pool's per-replica budget could never be loaded
    there (or only by evicting everything else): refused before anything is written."""
    if size > budget:
        raise InvalidInput(
            f"{ref} is too large for pool {pool!r}: its files take {size} bytes, and a pool "
            f"replica keeps at most {budget} bytes of models loaded (pool_memory); deploy it "
            "on its own replicas (without --pool)",
            {"field": "pool", "pool": pool, "size": size, "budget": budget},
        )


class PoolReplica(Record):
    pid: int
    ready: bool
    models_loaded: int
    loaded: list[str]  # NAME@VERSION of each loaded deployment version
    memory_bytes: int
    loads: int
    evictions: int
    requests: int


class Pool(Record):
    """A pool as `pools show` reports it: its settings, what is placed on it and, while
    a server runs it, its replicas. `hit_rate` is the share of requests whose model was
    already loaded on the replica that took them (None before any request)."""

    name: str
    replicas_wanted: int
    memory_budget: int
    deployments: int
    running: bool
    endpoint: str | None = None
    replicas: list[PoolReplica]
    restarts: int = 0
    models_loaded: int = 0
    memory_bytes: int = 0
    requests: int = 0
    loads: int = 0
    evictions: int = 0
    hit_rate: float | None = None
