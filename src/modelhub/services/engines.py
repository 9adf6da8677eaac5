"""The training engines as the platform sees them: their records, and where a run would go.

The store is the one truth of what runs where (each run records its newest attempt's
engine), so every server over one database reports the same queue and figures. The
capacity and status come from the scheduler of this process when it runs, else from
the settings (and the cluster, for Ray).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelhub.domain.engines import (
    EngineCapacity,
    EngineKind,
    EngineRecord,
    engine_figures,
    utilisation,
)
from modelhub.domain.pipelines import PipelineSpec
from modelhub.domain.runs import FINAL, PRIORITY_RANK, Run, RunResources, RunStatus
from modelhub.errors import InvalidInput
from modelhub.stores.metadata.base import MetadataStore
from modelhub.training.scheduler import Scheduler
from modelhub.training.scheduler.capacity import Capacity
from modelhub.training.scheduler.engines import (
    Holding,
    TrainingEngine,
    choose_engine,
    ever_fits,
    start_estimate,
    whole_need,
)

RECENT_RUNS = 200  # the finished runs an engine's figures are taken over


@dataclass(frozen=True)
class EngineView:
    """What is known of one engine now: its capacity and whether it can be reached."""

    name: str
    capacity: Capacity
    nodes: int = 1
    online: bool = True
    reason: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a run of a spec would go and when it could start (None: cannot say)."""

    engine: str | None
    start_in_seconds: float | None
    workers: int


def run_need(spec: PipelineSpec) -> RunResources:
    """Everything a run of `spec` reserves at once: every worker's share."""
    per_worker = RunResources(
        cpus=spec.resources.cpus, memory=spec.resources.memory, gpus=spec.resources.gpus
    )
    return whole_need(per_worker, spec.distributed.workers if spec.distributed else 1)


class EngineBook:
    def __init__(
        self,
        metadata: MetadataStore,
        local_capacity: Callable[[], Capacity],
        scheduler: Callable[[], Scheduler | None],
        cluster: Callable[[], EngineView | None],
        plugins: Callable[[], list[EngineView]] = list,
    ) -> None:
        self.metadata = metadata
        self.local_capacity = local_capacity
        self.scheduler = scheduler
        self.cluster = cluster
        self.plugins = plugins

    def views(self) -> list[EngineView]:
        """The engines this server can use, the scheduler's live view first."""
        running = self.scheduler()
        if running is not None:
            return [_view(engine) for engine in running.engines.values()]
        views = [EngineView("local", self.local_capacity())]
        cluster = self.cluster()
        if cluster is not None:
            views.append(cluster)
        return views + self.plugins()

    def spec_problems(self, spec: PipelineSpec) -> list[tuple[str, str]]:
        """(field, message) for an engine the spec names that this server does not offer."""
        names = [view.name for view in self.views()]
        if spec.engine is None or spec.engine in names:
            return []
        message = (
            f"names the {spec.engine} engine, which this server does not offer "
            f"(engines: {', '.join(names)})"
        )
        return [("engine", message)]

    def check_fits(self, spec: PipelineSpec) -> None:
        """InvalidInput when no engine the run may use could ever hold it."""
        views = self.views()
        problems = self.spec_problems(spec)
        if problems:
            field, message = problems[0]
            raise InvalidInput(f"the run {message}", {"field": field})
        pinned = spec.engine
        need = run_need(spec)
        allowed = [view for view in views if pinned is None or view.name == pinned]
        if any(not view.online and view.nodes == 0 for view in allowed):
            return  # an engine never reached yet (a cluster down): the run waits for it
        if not ever_fits(need, {view.name: view.capacity for view in views}, pinned):
            offered = "; ".join(
                f"{v.name}: {v.capacity.cpus:g} cpus, {v.capacity.memory / 2**30:.2f} GiB, "
                f"{v.capacity.gpus} gpus"
                for v in views
                if pinned is None or v.name == pinned
            )
            raise InvalidInput(
                f"the run asks for {need.cpus:g} cpus, {need.memory / 2**30:.2f} GiB and "
                f"{need.gpus} gpus in all; training here offers {offered}",
                {"field": "resources"},
            )

    def placement(self, spec: PipelineSpec) -> Placement:
        """The engine a run of `spec` would start on and in how many seconds, from now."""
        workers = spec.distributed.workers if spec.distributed else 1
        views = {view.name: view for view in self.views()}
        need = run_need(spec)
        pinned = spec.engine
        active = self.metadata.list_runs([RunStatus.RUNNING, RunStatus.QUEUED])
        free = {name: self._free(view, active) for name, view in views.items()}
        online = [name for name, view in views.items() if view.online]
        chosen = choose_engine(need, pinned, free, online)
        if chosen is None:  # it waits: for the engine that could hold it, in preference order
            fitting = [
                name
                for name in ([pinned] if pinned else list(views))
                if name in views and views[name].capacity.fits(need)
            ]
            chosen = fitting[0] if fitting else None
        if chosen is None:
            return Placement(None, None, workers)
        rank = PRIORITY_RANK[spec.priority]
        running = [
            Holding(run.resources, _remaining(run))
            for run in active
            if run.status is RunStatus.RUNNING and run.engine == chosen
        ]
        ahead = [
            Holding(run.resources, _estimated(run))
            for run in sorted(active, key=lambda r: r.queued_at or r.created_at)
            if run.status is RunStatus.QUEUED
            and PRIORITY_RANK[run.priority] >= rank
            and self._queued_for(run, views) == chosen
        ]
        start = start_estimate(views[chosen].capacity, running, ahead, need)
        if not views[chosen].online:
            start = None
        return Placement(chosen, start, workers)

    def records(self) -> list[EngineRecord]:
        views = {view.name: view for view in self.views()}
        active = self.metadata.list_runs([RunStatus.RUNNING, RunStatus.QUEUED])
        recent = self.metadata.list_runs(FINAL, limit=RECENT_RUNS)
        records = []
        for name, view in views.items():
            capacity = _capacity(view.capacity, view.nodes)
            free = _capacity(self._free(view, active), view.nodes)
            mine = [run for run in recent if run.engine == name]
            figures = engine_figures(mine)
            records.append(
                EngineRecord(
                    name=name,
                    kind=_kind(name),
                    status="online" if view.online else "offline",
                    reason=view.reason,
                    address=view.address,
                    capacity=capacity,
                    free=free,
                    queued=sum(
                        1
                        for run in active
                        if run.status is RunStatus.QUEUED and self._queued_for(run, views) == name
                    ),
                    running=sum(
                        1 for r in active if r.status is RunStatus.RUNNING and r.engine == name
                    ),
                    utilisation=utilisation(capacity, free),
                    **figures.model_dump(),
                )
            )
        return records

    def _free(self, view: EngineView, active: list[Run]) -> Capacity:
        held = (
            r.resources for r in active if r.status is RunStatus.RUNNING and r.engine == view.name
        )
        return view.capacity.minus(held)

    @staticmethod
    def _queued_for(run: Run, views: dict[str, EngineView]) -> str | None:
        """The engine a queued run waits for: the one it names, else the first that holds it."""
        if run.requested_engine:
            return run.requested_engine
        return next((n for n, v in views.items() if v.capacity.fits(run.resources)), None)


def _kind(name: str) -> EngineKind:
    return "local" if name == "local" else "ray" if name == "ray" else "plugin"


def _view(engine: TrainingEngine) -> EngineView:
    return EngineView(
        engine.name, engine.capacity, engine.nodes, engine.online, engine.reason, engine.address
    )


def _capacity(capacity: Capacity, nodes: int) -> EngineCapacity:
    return EngineCapacity(
        cpus=round(capacity.cpus, 3), gpus=capacity.gpus, memory=capacity.memory, nodes=nodes
    )


def _estimated(run: Run) -> float:
    estimate = run.inputs.get("estimate") if run.inputs else None
    seconds = estimate.get("seconds") if isinstance(estimate, dict) else None
    return float(seconds) if isinstance(seconds, int | float) else 0.0


def _remaining(run: Run) -> float:
    """Seconds a running run still holds its share: its ETA, else what its estimate leaves."""
    if run.eta_seconds is not None:
        return float(run.eta_seconds)
    return max(0.0, _estimated(run) * (1 - run.progress / 100))
