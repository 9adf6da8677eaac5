"""Engines from installed executor plugins (`modelhub.executors`), next to local and ray.

Each plugin's factory builds its executor from the settings when the scheduler is
built; the engine takes the plugin's name, so a spec's `engine:` may name it and
`engines list` shows it (kind `plugin`). An executor with `refresh()` reports its own
capacity (and starts offline until the first refresh reaches it, as Ray does); one
without offers this host's capacity. A plugin that fails to load, or whose factory
fails, is logged and not offered: a spec naming it is told which engines exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from modelhub.errors import ModelhubError, Unavailable
from modelhub.services.engines import EngineView
from modelhub.settings import Settings
from modelhub.training.executor import EXECUTORS, Executor, open_executor
from modelhub.training.scheduler.capacity import Capacity
from modelhub.training.scheduler.engines import TrainingEngine

log = logging.getLogger(__name__)


def plugin_names() -> list[str]:
    """The installed executor plugins that load, by name (built-ins left out, and not
    imported)."""
    names = []
    for name in EXECUTORS.names():
        if EXECUTORS.is_builtin(name):
            continue
        try:
            EXECUTORS.get(name)
        except Unavailable:
            continue  # listed as failed by `plugins list`, logged once
        names.append(name)
    return names


def plugin_engines(settings: Settings, host: Capacity) -> dict[str, TrainingEngine]:
    """The scheduler's engine for each installed executor plugin set up here."""
    engines = {}
    for name in plugin_names():
        try:
            executor = open_executor(name, settings)
        except ModelhubError as exc:
            log.warning("executor plugin %r is not offered: %s", name, exc.message)
            continue
        if executor is not None:
            engines[name] = plugin_engine(name, executor, host)
    return engines


def plugin_engine(name: str, executor: Executor, host: Capacity) -> TrainingEngine:
    refresh: Callable[[], tuple[Capacity, int]] | None = getattr(executor, "refresh", None)
    if not callable(refresh):
        return TrainingEngine(name, executor, host)
    return TrainingEngine(
        name,
        executor,
        Capacity(cpus=0.0, memory=0, gpus=0),
        nodes=0,
        online=False,
        reason="not reached yet",
        refresh=refresh,
        address=getattr(executor, "address", None),
    )


def plugin_views() -> list[EngineView]:
    """The plugin engines as a process without a scheduler sees them: named, not yet
    built (a run naming one waits for a scheduler to build it)."""
    return [
        EngineView(
            name,
            Capacity(cpus=0.0, memory=0, gpus=0),
            nodes=0,
            online=False,
            reason="built when a scheduler starts",
        )
        for name in plugin_names()
    ]
