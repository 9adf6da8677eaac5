"""Engine choice through the training service: the engine record, where and when a run
would start, gang reservation of a distributed run's workers, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.runs import RunStatus
from modelhub.errors import InvalidInput
from tests.integration.training_engine import (
    ADMIN,
    engine,
    finished,
    tabular_spec,
    wait_for,
    with_blobs,
)


def test_the_local_engine_record_and_a_runs_placement(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        [local] = services.training.engines(ADMIN)
        assert (local.name, local.kind, local.status) == ("local", "local", "online")
        assert (local.capacity.cpus, local.capacity.gpus, local.capacity.nodes) == (2.0, 0, 1)
        assert local.capacity.memory == 8 * 1024**3
        assert (local.queued, local.running, local.utilisation) == (0, 0, 0.0)
        assert local.success_rate is None and local.average_job_seconds is None

        one = services.training.create_pipeline(ADMIN, tabular_spec("one")).estimate
        assert (one.engine, one.start_in_seconds, one.workers) == ("local", 0.0, 1)
        two = services.training.create_pipeline(
            ADMIN, tabular_spec("two", distributed="{workers: 2}")
        ).estimate
        assert (two.engine, two.start_in_seconds, two.workers) == ("local", 0.0, 2)
        assert two.breakdown["cpu"] == pytest.approx(2 * one.breakdown["cpu"])
        assert "2 workers" in two.notes

        run = services.training.start(ADMIN, "one")
        [local] = services.training.engines(ADMIN)
        assert local.queued == 1
        done = finished(services, run.id, timeout=60, scheduler=services.training.build_scheduler())
        assert done.status is RunStatus.COMPLETED and done.engine == "local"
        [local] = services.training.engines(ADMIN)
        assert local.success_rate == 1.0 and local.average_job_seconds is not None
        assert local.queue_wait_seconds is not None and local.queued == 0


def test_a_gang_waits_whole_until_every_worker_fits(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        services.training.create_pipeline(ADMIN, tabular_spec("solo", max_epochs=30))
        services.training.create_pipeline(ADMIN, tabular_spec("gang", distributed="{workers: 2}"))
        scheduler = services.training.build_scheduler()
        solo = services.training.start(ADMIN, "solo")
        scheduler.tick()
        assert services.training.get_run(ADMIN, solo.id).status is RunStatus.RUNNING
        gang = services.training.start(ADMIN, "gang")
        assert gang.resources.cpus == 2.0 and gang.resources.memory == 4 * 1024**3

        behind = services.training.check_pipeline(
            ADMIN, tabular_spec("gang", distributed="{workers: 2}")
        )
        assert behind.engine == "local" and (behind.start_in_seconds or 0) > 0
        scheduler.tick()
        assert services.training.get_run(ADMIN, gang.id).status is RunStatus.QUEUED
        [local] = services.training.engines(ADMIN)
        assert (local.running, local.queued, local.utilisation) == (1, 1, 0.5)

        services.training.cancel(ADMIN, solo.id)
        wait_for(
            lambda: services.training.get_run(ADMIN, gang.id).status is not RunStatus.QUEUED,
            timeout=60,
            scheduler=scheduler,
        )
        assert services.training.get_run(ADMIN, solo.id).status is RunStatus.CANCELLED
        scheduler.stop(grace_seconds=1)


def test_runs_no_engine_can_hold_are_refused_naming_what_is_offered(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        services.training.create_pipeline(ADMIN, tabular_spec("wide", distributed="{workers: 3}"))
        with pytest.raises(InvalidInput) as caught:
            services.training.start(ADMIN, "wide")
        assert "3 cpus" in caught.value.message and "local: 2 cpus" in caught.value.message

        with pytest.raises(InvalidInput) as caught:
            services.training.create_pipeline(ADMIN, tabular_spec("pinned", engine="ray"))
        [problem] = caught.value.details["errors"]
        assert problem["field"] == "engine"
        assert "names the ray engine, which this server does not offer" in problem["message"]
        assert [p.name for p in services.training.list_pipelines(ADMIN)] == ["wide"]
