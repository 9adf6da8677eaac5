"""The shared model pools as `pools list|show` report them.

What is placed on a pool comes from the records (live deployments with that pool);
what its replicas hold (loaded models, memory, loads, evictions, requests) from the
running supervisor, when this process is the server that runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelhub.domain.auth import Action, Caller
from modelhub.domain.deployments import LIVE
from modelhub.domain.pipelines import parse_memory
from modelhub.domain.pools import POOLS, Pool, PoolReplica, check_pool

if TYPE_CHECKING:
    from modelhub.services.deployments import DeploymentService


def list_pools(service: DeploymentService, caller: Caller) -> list[Pool]:
    service.auth.authorize(caller, Action.DEPLOYMENTS_READ)
    return [_describe(service, name) for name in POOLS]


def show_pool(service: DeploymentService, caller: Caller, name: str) -> Pool:
    service.auth.authorize(caller, Action.DEPLOYMENTS_READ)
    return _describe(service, check_pool(name))


def _describe(service: DeploymentService, name: str) -> Pool:
    settings = service.settings
    placed = [d for d in service.metadata.list_deployments() if d.pool == name and d.status in LIVE]
    supervisor = service.rollouts.supervisor
    running = supervisor.running_pool(name) if supervisor is not None else None
    base = Pool(
        name=name,
        replicas_wanted=settings.pool_replicas,
        memory_budget=parse_memory(settings.pool_memory),
        deployments=len(placed),
        running=running is not None,
        replicas=[],
    )
    if running is None:
        return base
    stats = running.stats()
    replicas = [PoolReplica.model_validate(r) for r in stats["replicas"]]
    requests = sum(r.requests for r in replicas)
    loads = sum(r.loads for r in replicas)
    return base.model_copy(
        update={
            "endpoint": stats["endpoint"],
            "replicas": replicas,
            "restarts": int(stats["restarts"]),
            "models_loaded": sum(r.models_loaded for r in replicas),
            "memory_bytes": sum(r.memory_bytes for r in replicas),
            "requests": requests,
            "loads": loads,
            "evictions": sum(r.evictions for r in replicas),
            "hit_rate": round(max(0.0, 1.0 - loads / requests), 4) if requests else None,
        }
    )
