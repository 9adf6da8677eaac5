"""Engine choice, gang reservation and the start estimate, on made-up engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelhub.domain.engines import EngineCapacity, engine_figures, utilisation
from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import Run, RunResources, RunStatus
from modelhub.training.scheduler.capacity import Capacity
from modelhub.training.scheduler.engines import (
    Holding,
    choose_engine,
    ever_fits,
    start_estimate,
    whole_need,
)

GiB = 1024**3
HOST = Capacity(cpus=2, memory=8 * GiB, gpus=0)
CLUSTER = Capacity(cpus=16, memory=64 * GiB, gpus=2)


def need(cpus: float, gpus: int = 0, memory: int = GiB) -> RunResources:
    return RunResources(cpus=cpus, memory=memory, gpus=gpus)


def test_a_distributed_run_needs_every_worker_at_once() -> None:
    assert whole_need(need(1.5, 1, 2 * GiB), 4) == need(6, 4, 8 * GiB)


def test_local_is_preferred_when_the_run_fits_there() -> None:
    free = {"ray": CLUSTER, "local": HOST}
    assert choose_engine(need(1), None, free, ["local", "ray"]) == "local"


def test_a_run_too_big_for_the_host_goes_to_the_cluster() -> None:
    free = {"local": HOST, "ray": CLUSTER}
    assert choose_engine(whole_need(need(1), 4), None, free, ["local", "ray"]) == "ray"
    assert choose_engine(need(1, gpus=1), None, free, ["local", "ray"]) == "ray"


def test_a_gang_that_does_not_fit_now_waits_whole() -> None:
    busy = {"local": HOST.minus([need(1)])}
    assert choose_engine(whole_need(need(1), 2), None, busy, ["local"]) is None
    assert choose_engine(need(1), None, busy, ["local"]) == "local"


def test_a_pinned_run_goes_only_to_its_engine_and_waits_while_it_is_offline() -> None:
    free = {"local": HOST, "ray": CLUSTER}
    assert choose_engine(need(1), "ray", free, ["local", "ray"]) == "ray"
    assert choose_engine(need(1), "ray", free, ["local"]) is None
    assert choose_engine(need(1), None, free, ["ray"]) == "ray"  # local offline: the next


def test_ever_fits_looks_at_whole_capacities_of_the_allowed_engines() -> None:
    capacities = {"local": HOST, "ray": CLUSTER}
    assert ever_fits(need(8), capacities, None)
    assert not ever_fits(need(8), capacities, "local")
    assert not ever_fits(need(100), capacities, None)


def test_start_estimate_is_now_on_a_free_engine() -> None:
    assert start_estimate(HOST, [], [], need(1)) == 0.0


def test_start_estimate_waits_for_running_runs_to_end() -> None:
    running = [Holding(need(1), 30.0), Holding(need(1), 90.0)]
    assert start_estimate(HOST, running, [], need(1)) == 30.0
    assert start_estimate(HOST, running, [], need(2)) == 90.0


def test_start_estimate_lets_the_queue_ahead_go_first() -> None:
    running = [Holding(need(2), 10.0)]
    ahead = [Holding(need(2), 60.0)]
    assert start_estimate(HOST, running, ahead, need(1)) == 70.0
    never = [Holding(need(64), 1e9)]  # cannot ever start here: holds nothing up
    assert start_estimate(HOST, running, never, need(1)) == 10.0


def test_start_estimate_of_a_run_bigger_than_the_engine_is_none() -> None:
    assert start_estimate(HOST, [], [], need(3)) is None


def run(status: RunStatus, started: float | None, took: float | None, waited: float) -> Run:
    created = datetime(2026, 12, 7, tzinfo=UTC)
    start = created + timedelta(seconds=waited) if started is not None else None
    return Run(
        id=1,
        pipeline="p",
        pipeline_version=1,
        status=status,
        priority=Priority.NORMAL,
        resources=need(1),
        created_by="ana",
        created_at=created,
        started_at=start,
        finished_at=start + timedelta(seconds=took) if start and took is not None else None,
        max_attempts=3,
        result_model="m",
    )


def test_engine_figures_from_finished_runs() -> None:
    runs = [
        run(RunStatus.COMPLETED, 0, 10, waited=1),
        run(RunStatus.COMPLETED, 0, 30, waited=3),
        run(RunStatus.FAILED, 0, 5, waited=2),
        run(RunStatus.CANCELLED, 0, 5, waited=100),
    ]
    figures = engine_figures(runs)
    assert figures.average_job_seconds == 20.0
    assert figures.success_rate == 2 / 3
    assert figures.queue_wait_seconds == 2.5
    empty = engine_figures([])
    assert (empty.average_job_seconds, empty.success_rate, empty.queue_wait_seconds) == (
        None,
        None,
        None,
    )


def test_utilisation_is_the_fullest_resource() -> None:
    total = EngineCapacity(cpus=4, gpus=0, memory=8 * GiB)
    free = EngineCapacity(cpus=3, gpus=0, memory=2 * GiB)
    assert utilisation(total, free) == 0.75
    assert utilisation(total, total) == 0.0
