"""The Ray engine as the training service and its scheduler see it (`engine: ray`).

What `pipelines create` says of a spec that names the ray engine here, the executor
the settings describe, and that engine's record for the scheduler and for views.
Ray itself is imported only where a cluster is set.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelhub.domain.pipelines import Engine, PipelineSpec
from modelhub.services.engines import EngineView
from modelhub.settings import Settings
from modelhub.training.scheduler import Capacity
from modelhub.training.scheduler.engines import TrainingEngine

if TYPE_CHECKING:
    from modelhub.training.ray_engine import RayExecutor

log = logging.getLogger(__name__)


def engine_problems(spec: PipelineSpec, settings: Settings) -> list[tuple[str, str]]:
    """What keeps the spec's chosen engine from running it here (field `engine`)."""
    if spec.engine != Engine.RAY:
        return []
    from modelhub.training.ray_engine import ray_missing

    problems = []
    if ray_missing() is not None:
        problems.append(
            ("engine", "names the ray engine, which needs Ray: pip install 'modelhub[ray]'")
        )
    if settings.train_ray_address is None:
        problems.append(
            (
                "engine",
                "names the ray engine, which this server does not offer: no Ray cluster "
                "is set (MODELHUB_TRAIN_RAY_ADDRESS: auto, ray://head:10001 or head:6379)",
            )
        )
    return problems


def ray_executor(settings: Settings) -> RayExecutor | None:
    """The Ray engine's executor when the settings name a cluster and Ray is installed
    (None otherwise): the `ray` entry of the executors' extension point."""
    from modelhub.training.ray_engine import open_ray

    return open_ray(settings)


def ray_engine(executor: RayExecutor) -> TrainingEngine:
    """The Ray engine as the scheduler holds it: offline until its first refresh (the
    scheduler's first tick) reaches the cluster; the settings' policy for a start that
    finds it unreachable."""
    return TrainingEngine(
        "ray",
        executor,
        Capacity(cpus=0.0, memory=0, gpus=0),
        nodes=0,
        online=False,
        reason="not reached yet",
        refresh=executor.refresh,
        requeue_unreachable=executor.keeps_queued,
        address=executor.address,
    )


def ray_view(executor: RayExecutor) -> EngineView:
    """The Ray engine as `engines list` and placement see it, asking the cluster now."""
    status = executor.status()
    return EngineView(
        "ray", status.capacity, status.nodes, status.reachable, status.reason, executor.address
    )
