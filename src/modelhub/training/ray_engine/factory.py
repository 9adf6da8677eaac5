"""The `ray` executor factory: the Ray engine's executor, built from the settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelhub.training.ray_engine.connection import ray_missing
from modelhub.training.ray_engine.executor import RayExecutor

if TYPE_CHECKING:
    from modelhub.settings import Settings

log = logging.getLogger(__name__)


def open_ray(settings: Settings) -> RayExecutor | None:
    """The Ray engine's executor when the settings name a cluster and Ray is installed
    (None otherwise, with a warning when an address is set but Ray is missing).
    Building it connects to nothing: the first `status` or `start` does."""
    if settings.train_ray_address is None:
        return None
    missing = ray_missing()
    if missing is not None:
        log.warning("MODELHUB_TRAIN_RAY_ADDRESS is set but the Ray engine is off: %s", missing)
        return None
    return RayExecutor(
        settings.train_ray_address,
        settings.runs_dir,
        unreachable=settings.train_ray_unreachable,
        connect_timeout=settings.train_ray_connect_timeout_seconds,
    )
