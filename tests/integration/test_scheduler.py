"""The scheduler with real worker processes: order, admission, cancel, retry, limits, faults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest

from modelhub.domain.enums import Stage
from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import RunStatus
from modelhub.errors import IllegalTransition, InvalidInput, NotFound
from modelhub.services.registry import RegisterRequest
from modelhub.training.trainers import trainer_module
from modelhub.training.trainers.text_classifier import minilm_path
from tests.integration.training_engine import (
    ADMIN,
    all_events,
    engine,
    finished,
    tabular_spec,
    wait_for,
    with_blobs,
)
from tests.stores import stores_of
from tests.unit.training.test_text_classifier import intents_file


def test_a_run_trains_and_its_result_is_a_new_version_with_lineage(tmp_path: Path) -> None:
    with engine(tmp_path, train_warm_workers=1) as services:
        with_blobs(services, tmp_path)
        created = services.training.create_pipeline(
            ADMIN, tabular_spec("blobs", checkpoint="{every_steps: 10, keep_last: 2}")
        )
        assert created.estimate.memory_bytes > 0 and created.estimate.currency == "USD"
        services.training.start_scheduler()
        run = services.training.start(ADMIN, "blobs")
        run = finished(services, run.id)

        assert (run.status, run.error, run.progress) == (RunStatus.COMPLETED, None, 100.0)
        assert run.result_version == 1 and run.attempts == 1
        assert run.metrics["val_accuracy"] > 0.9
        version = services.registry.get("blobs-model@1")
        assert version.stage is Stage.DEVELOPMENT
        assert version.lineage.source_run == str(run.id)
        assert version.lineage.pipeline == "blobs@1"
        assert version.lineage.datasets == [services.datasets.get(ADMIN, "blobs").digest]
        assert version.lineage.hyperparameters == {"batch_size": 16, "max_epochs": 2}
        assert version.metrics["val_accuracy"] == run.metrics["val_accuracy"]
        # Registering it profiled its training dataset as its drift reference.
        reference = services.drift.reference(ADMIN, "blobs-model", 1)
        assert (reference.status, reference.source, reference.rows) == ("ready", "blobs@1", 400)
        assert reference.columns == ["a", "b", "output.label"]

        # The registered files load again and predict what the run's own output predicts.
        download = tmp_path / "download"
        services.registry.download("blobs-model@1", download)
        local = trainer_module("tabular_classifier").load(
            services.training.run_dir(run.id) / "output"
        )
        again = trainer_module("tabular_classifier").load(download)
        rows = [{"a": 3.0, "b": -3.0}, {"a": -0.5, "b": 0.2}]
        assert again.predict_proba(rows) == local.predict_proba(rows)

        kinds = [event.kind for event in all_events(services, run.id)]
        statuses = [e.data["status"] for e in all_events(services, run.id) if e.kind == "status"]
        assert statuses == ["queued", "running", "finishing", "completed"]
        assert {"progress", "metrics", "checkpoint"} <= set(kinds)
        kept = services.training.checkpoints(ADMIN, run.id)
        with stores_of(services) as stores:
            assert len(kept) == 2 and all(stores.artifacts.exists(c.digest) for c in kept)
        assert "--- attempt 1 of 3" in services.training.logs(ADMIN, run.id).decode()
        # The scheduler sampled the worker: its CPU-seconds and memory reach the run,
        # and the monitoring figure is the one its cost is priced from.
        used = services.history.run_resources(run.id)
        assert used.cpu_seconds > 0 and used.peak_rss_bytes > 2**20
        assert services.cost.run_cost(run.id).cpu_seconds == used.cpu_seconds


def test_the_queue_orders_by_priority_then_arrival_and_ages_waiting_runs(
    tmp_path: Path,
) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        services.training.create_pipeline(ADMIN, tabular_spec("p"))
        scheduler = services.training.build_scheduler()  # never ticked: nothing starts
        low = services.training.start(ADMIN, "p", Priority.LOW)
        normal_1 = services.training.start(ADMIN, "p")
        urgent = services.training.start(ADMIN, "p", Priority.URGENT)
        normal_2 = services.training.start(ADMIN, "p")
        high = services.training.start(ADMIN, "p", Priority.HIGH)
        order = [run.id for run in scheduler.queue()]
        assert order == [urgent.id, high.id, normal_1.id, normal_2.id, low.id]

        # A low run that has waited two aging periods outranks a fresh normal one.
        waited = low.created_at - timedelta(seconds=2 * scheduler.config.aging_seconds + 1)
        with stores_of(services) as stores:
            stores.metadata.move_run(low.id, [RunStatus.QUEUED], queued_at=waited)
        order = [run.id for run in scheduler.queue()]
        assert order.index(low.id) < order.index(normal_1.id)
        assert order.index(low.id) > order.index(urgent.id)


def test_admission_keeps_to_the_cpus_and_the_concurrency_cap(tmp_path: Path) -> None:
    with engine(tmp_path, train_max_running=2) as services:
        with_blobs(services, tmp_path, rows=200)
        services.training.create_pipeline(ADMIN, tabular_spec("big", resources="{cpus: 1.5}"))
        services.training.create_pipeline(ADMIN, tabular_spec("small", resources="{cpus: 0.5}"))
        scheduler = services.training.build_scheduler()
        big = [services.training.start(ADMIN, "big") for _ in range(2)]
        scheduler.tick()
        assert list(scheduler.active) == [big[0].id]  # 1.5 + 1.5 cpus do not fit in 2
        small = [services.training.start(ADMIN, "small") for _ in range(3)]
        scheduler.tick()
        assert set(scheduler.active) == {big[0].id, small[0].id}  # the cap is 2

        peak = 0

        def all_done() -> bool:
            nonlocal peak
            peak = max(peak, len(scheduler.active))
            assert scheduler.free().cpus >= 0
            runs = [services.training.get_run(ADMIN, r.id) for r in big + small]
            return all(r.status is RunStatus.COMPLETED for r in runs)

        wait_for(all_done, timeout=180, scheduler=scheduler)
        assert peak <= 2


def test_cancel_a_queued_run_and_a_running_one(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path, rows=20_000)
        services.training.create_pipeline(
            ADMIN, tabular_spec("slow", max_epochs=50, hyperparameters="{batch_size: 8}")
        )
        scheduler = services.training.build_scheduler()
        queued = services.training.start(ADMIN, "slow")
        assert services.training.cancel(ADMIN, queued.id).status is RunStatus.CANCELLED
        with pytest.raises(IllegalTransition, match="nothing to cancel"):
            services.training.cancel(ADMIN, queued.id)

        running = services.training.start(ADMIN, "slow")
        wait_for(lambda: services.training.get_run(ADMIN, running.id).step > 0, scheduler=scheduler)
        services.training.cancel(ADMIN, running.id)
        run = finished(services, running.id, scheduler=scheduler)
        assert run.status is RunStatus.CANCELLED and run.result_version is None
        with pytest.raises(NotFound):
            services.registry.get_model("slow-model")


def test_a_killed_worker_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    every = 50
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path, rows=8_000)
        spec = tabular_spec(
            "resumable",
            max_epochs=3,
            hyperparameters="{batch_size: 8, log_every: 1}",
            checkpoint=f"{{every_steps: {every}}}",
        )
        services.training.create_pipeline(ADMIN, spec)
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "resumable")
        wait_for(
            lambda: services.training.get_run(ADMIN, run.id).step > 3 * every, scheduler=scheduler
        )
        pid = scheduler.active[run.id].handle.pid
        os.killpg(pid, signal.SIGKILL)
        killed = time.time()

        run = finished(services, run.id, timeout=180, scheduler=scheduler)
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.attempts == 2
        before, after = _loss_steps_around(services.training.run_dir(run.id), killed)
        killed_at, resumed_from = before[-1], after[0] - 1
        assert resumed_from % every == 0 and resumed_from > 0
        assert killed_at - resumed_from <= every  # lost at most one checkpoint interval
        total = 3 * (8_000 * 4 // 5 // 8)  # epochs x batches of the training split
        assert after[-1] == total and run.step == total
        events = all_events(services, run.id)
        statuses = [e.data["status"] for e in events if e.kind == "status"]
        assert statuses == [
            *("queued", "running", "pending"),
            *("queued", "running", "finishing", "completed"),
        ]


def _loss_steps_around(run_dir: Path, killed: float) -> tuple[list[int], list[int]]:
    """The loss steps logged before a kill at `killed` (epoch seconds) and after it.

    Told apart by each line's time, not by a step going back: a kill that lands just
    after a checkpoint and before the next line resumes at the very next step.
    """
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    losses = [item for item in map(json.loads, lines) if item["name"] == "loss"]
    return (
        [item["step"] for item in losses if item["at"] <= killed],
        [item["step"] for item in losses if item["at"] > killed],
    )


def test_a_run_that_keeps_crashing_fails_when_its_attempts_are_spent(tmp_path: Path) -> None:
    with engine(tmp_path, train_max_attempts=1) as services:
        with_blobs(services, tmp_path, rows=8_000)
        services.training.create_pipeline(
            ADMIN,
            tabular_spec(
                "fragile",
                max_epochs=3,
                hyperparameters="{batch_size: 8}",
                checkpoint="{every_steps: 100}",
            ),
        )
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "fragile")
        wait_for(lambda: services.training.get_run(ADMIN, run.id).step > 0, scheduler=scheduler)
        os.killpg(scheduler.active[run.id].handle.pid, signal.SIGKILL)
        run = finished(services, run.id, scheduler=scheduler)
        assert run.status is RunStatus.FAILED
        assert "killed by signal 9" in (run.error or "") and "no attempts left" in (run.error or "")

        # Resuming gives it fresh attempts and it continues from its checkpoint.
        services.training.resume(ADMIN, run.id)
        run = finished(services, run.id, timeout=180, scheduler=scheduler)
        assert run.attempts == 2
        with pytest.raises(IllegalTransition, match="cannot become queued"):
            services.training.resume(ADMIN, run.id)


def test_a_run_over_its_memory_limit_is_stopped_and_says_why(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        services.training.create_pipeline(
            ADMIN, tabular_spec("hungry", resources="{cpus: 1, memory: 64MiB}")
        )
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "hungry")
        run = finished(services, run.id, scheduler=scheduler)
        assert run.status is RunStatus.FAILED
        assert "over its memory limit of 64 MiB" in (run.error or "")


def test_nan_loss_fails_the_run_with_the_reason_and_an_alert(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        services.training.create_pipeline(
            ADMIN,
            tabular_spec("unstable", hyperparameters="{batch_size: 16, learning_rate: 1.0e+30}"),
        )
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "unstable")
        run = finished(services, run.id, scheduler=scheduler)
        assert run.status is RunStatus.FAILED and run.error_code == "training_diverged"
        assert "loss became nan" in (run.error or "")
        alerts = services.training.alerts(ADMIN, run.id)
        assert [a.rule for a in alerts] == ["nan_loss"] and alerts[0].severity == "critical"


def test_runs_left_running_by_a_stopped_scheduler_resume_under_the_next(tmp_path: Path) -> None:
    lease = {"train_lease_seconds": 1.0, "train_heartbeat_seconds": 0.2}
    with engine(tmp_path, train_max_running=2, **lease) as services:
        with_blobs(services, tmp_path, rows=8_000)
        services.training.create_pipeline(
            ADMIN,
            tabular_spec(
                "long",
                max_epochs=2,
                hyperparameters="{batch_size: 8}",
                checkpoint="{every_steps: 100}",
                resources="{cpus: 0.5}",
            ),
        )
        first = services.training.build_scheduler()
        runs = [services.training.start(ADMIN, "long") for _ in range(3)]
        wait_for(lambda: len(first.active) == 2, scheduler=first)
        cancelled, kept = sorted(first.active)
        services.training.cancel(ADMIN, cancelled)  # asked, never seen by the dying scheduler
        # The scheduler vanishes the way a kill -9 leaves it: workers dead, rows running.
        for active in first.active.values():
            active.handle.kill()
        first.active.clear()
        assert sorted(r.status for r in services.training.list_runs(ADMIN)) == [
            RunStatus.QUEUED,
            RunStatus.RUNNING,
            RunStatus.RUNNING,
        ]

        second = services.training.build_scheduler()
        assert second.owner != first.owner  # same host and pid, another start
        recovered: set[int] = set()

        def taken_over() -> bool:
            recovered.update(second.recover())
            return services.training.get_run(ADMIN, cancelled).status is not RunStatus.RUNNING

        wait_for(taken_over, timeout=30)
        assert recovered == {kept}  # the cancelled run is not started again
        assert services.training.get_run(ADMIN, cancelled).status is RunStatus.CANCELLED
        for run in runs:
            if run.id != cancelled:
                done = finished(services, run.id, timeout=240, scheduler=second)
                assert done.status is RunStatus.COMPLETED, done.error


def test_a_finishing_run_frees_its_slot_and_a_restart_finishes_it_exactly_once(
    tmp_path: Path,
) -> None:
    lease = {"train_lease_seconds": 1.0, "train_heartbeat_seconds": 0.2}
    with engine(tmp_path, train_max_running=2, **lease) as services:
        with_blobs(services, tmp_path, rows=100)
        services.training.create_pipeline(ADMIN, tabular_spec("quick", max_epochs=1))
        # Ticked by hand and never asked to finish: its server dies while runs finish.
        first = services.training.build_scheduler()
        one, two, three = (services.training.start(ADMIN, "quick") for _ in range(3))

        def two_finishing() -> bool:
            first.tick()
            status = {services.training.get_run(ADMIN, r.id).status for r in (one, two)}
            return status == {RunStatus.FINISHING}

        wait_for(two_finishing)
        # Both slots were handed on before either result registered: the third run started.
        assert services.training.get_run(ADMIN, three.id).status is not RunStatus.QUEUED
        assert services.registry.model_owner("quick-model") is None
        finishing = services.training.list_runs(ADMIN, RunStatus.FINISHING)
        assert [r.id for r in finishing] == [two.id, one.id]
        with pytest.raises(IllegalTransition, match="finishing; there is nothing to cancel"):
            services.training.cancel(ADMIN, one.id)
        # The first run's server had registered its version, not yet marked it completed.
        left = services.training.get_run(ADMIN, one.id)
        output = services.training.run_dir(one.id) / "output"
        registered = services.training.register_result(left, output, {"loss": 0.1})
        for active in first.active.values():  # the server dies: its workers die with it
            active.handle.kill()
        first.active.clear()

        second = services.training.build_scheduler()
        for run in (one, two, three):
            done = finished(services, run.id, timeout=120, scheduler=second)
            assert done.status is RunStatus.COMPLETED, done.error
        versions = services.registry.versions("quick-model")
        sources = sorted(int(v.lineage.source_run or 0) for v in versions)
        assert sources == [one.id, two.id, three.id]  # one version each, none twice
        assert services.training.get_run(ADMIN, one.id).result_version == registered
        events = all_events(services, one.id)
        statuses = [e.data["status"] for e in events if e.kind == "status"]
        assert statuses == ["queued", "running", "finishing", "completed"]

        # A later restart finds nothing left to finish and registers nothing more.
        services.training.stop_scheduler()
        third = services.training.build_scheduler()
        third.tick()
        assert third.finish_pending() == 0
        assert len(services.registry.versions("quick-model")) == 3


def test_pipelines_name_every_missing_reference_at_once(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        spec = tabular_spec(
            "broken",
            type="fine_tuning",
            trainer="text_classifier",
            base_model="nobody@champion",
            datasets="[blobs, ghost, blobs_extra@2]",
        )
        with pytest.raises(InvalidInput) as caught:
            services.training.create_pipeline(ADMIN, spec)
        fields = [e["field"] for e in caught.value.details["errors"]]
        assert fields == ["datasets[1]", "datasets[2]", "base_model"]
        assert services.training.list_pipelines(ADMIN) == []


def test_a_run_that_asks_for_more_than_the_host_has_is_refused(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        services.training.create_pipeline(ADMIN, tabular_spec("huge", resources="{cpus: 64}"))
        with pytest.raises(InvalidInput, match="asks for 64 cpus"):
            services.training.start(ADMIN, "huge")
        assert services.training.list_runs(ADMIN) == []


TRAIN_SCRIPT = """
import json, time
from pathlib import Path

import torch
from safetensors.torch import save_file

import modelhub.training


def train(ctx):
    torch.manual_seed(ctx.seed)
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1)
    total = int(ctx.hp("epochs", 1)) * 10
    for step in range(1, total + 1):
        loss = (weight - 3.0).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.log("loss", float(loss), step)
        ctx.log("distance", abs(float(weight) - 3.0) + (5.0 if step > 15 else 0.0), step)
        ctx.progress(step, total)
        ctx.checkpoint({"weight": weight.detach().clone()}, step)
        if step == 12:
            time.sleep(float(ctx.hp("pause", 0)))
    best = ctx.best_checkpoint()
    if best is not None:
        weight = best[1]["weight"]
    save_file({"weight": weight.detach().clone()}, str(ctx.output_dir / "model.safetensors"))
    (ctx.output_dir / "config.json").write_text(json.dumps({"kind": "toy"}))
    return {"weight": float(weight)}
"""


def test_a_script_pipeline_runs_keeps_its_best_checkpoint_and_a_pause_raises_stalled(
    tmp_path: Path,
) -> None:
    with engine(tmp_path, train_stall_seconds=1.0) as services:
        with_blobs(services, tmp_path, rows=50)
        spec = tabular_spec(
            "scripted",
            trainer="script",
            script="{path: train.py}",
            max_epochs=2,
            hyperparameters="{pause: 2.5}",
            checkpoint="{every_epoch: true, keep_last: 2, keep_best: {metric: distance}}",
        )
        services.training.create_pipeline(ADMIN, spec, {"train.py": TRAIN_SCRIPT.encode()})
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "scripted")
        wait_for(
            lambda: bool(
                [a for a in services.training.alerts(ADMIN, run.id) if a.state == "firing"]
            ),
            scheduler=scheduler,
        )
        run = finished(services, run.id, scheduler=scheduler)
        assert run.status is RunStatus.COMPLETED, run.error

        # Start-up (two processes importing torch) may count as a stall too; the pause
        # after step 12 must, and every stall ends once progress resumes.
        alerts = services.training.alerts(ADMIN, run.id)
        assert {(a.rule, a.state) for a in alerts} == {("stalled", "resolved")}
        feed = all_events(services, run.id)
        step_12 = next(e.id for e in feed if e.kind == "progress" and e.data["step"] >= 12)
        assert any(e.kind == "alert" and e.id > step_12 for e in feed)
        best = [c for c in services.training.checkpoints(ADMIN, run.id) if c.best]
        assert [c.step for c in best] == [15]  # distance jumps by 5 after step 15
        assert run.metrics["weight"] == pytest.approx(3.0 - 3.0 * 0.8**15, rel=1e-4)
        version = services.registry.get(f"scripted-model@{run.result_version}")
        assert version.lineage.source_run == str(run.id)
        script = trainer_module("script")
        services.registry.download(f"scripted-model@{run.result_version}", tmp_path / "got")
        served = script.load(tmp_path / "got")
        local = script.load(services.training.run_dir(run.id) / "output")
        assert served.config == local.config == {"kind": "toy"}
        assert float(served.tensors["weight"]) == float(local.tensors["weight"])
        assert float(served.tensors["weight"]) == pytest.approx(run.metrics["weight"])


def test_a_rejected_base_version_is_refused_at_creation_and_at_start(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        services.datasets.register(ADMIN, intents_file(tmp_path / "intents.jsonl"), "intents")
        services.registry.register(
            RegisterRequest(name="encoder", type="embedding_model"), minilm_path(), "alice"
        )
        spec = (
            "name: ft\ntype: fine_tuning\ntrainer: text_classifier\nbase_model: encoder@1\n"
            "datasets: [intents]\nresult_model: {name: intents}\n"
        )
        services.training.create_pipeline(ADMIN, spec)
        services.registry.reject("encoder", 1, "leaks personal data", ADMIN)
        with pytest.raises(InvalidInput, match="encoder@1 is rejected"):
            services.training.start(ADMIN, "ft")
        with pytest.raises(InvalidInput, match="base_model: encoder@1 is rejected"):
            services.training.create_pipeline(ADMIN, spec)
        assert services.training.list_runs(ADMIN) == []


DIVERGING_SCRIPT = """
import json
from safetensors.torch import save_file
import torch


def train(ctx):
    losses = [1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 3.0, 9.0]
    for step, loss in enumerate(losses, start=1):
        ctx.log("loss", loss, step)
        ctx.progress(step, len(losses))
    save_file({"w": torch.zeros(1)}, str(ctx.output_dir / "model.safetensors"))
    (ctx.output_dir / "config.json").write_text(json.dumps({"kind": "toy"}))
    return {"loss": losses[-1]}
"""


def test_a_diverging_loss_raises_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path, rows=20)
        spec = tabular_spec("wobbly", trainer="script", script="{path: train.py}")
        services.training.create_pipeline(ADMIN, spec, {"train.py": DIVERGING_SCRIPT.encode()})
        scheduler = services.training.build_scheduler()
        run = finished(services, services.training.start(ADMIN, "wobbly").id, scheduler=scheduler)
        assert run.status is RunStatus.COMPLETED, run.error
        alerts = services.training.alerts(ADMIN, run.id)
        assert [(a.rule, a.severity) for a in alerts] == [("diverging_loss", "warning")]
        assert "over 4x its best 0.35" in alerts[0].message


def test_a_run_whose_folder_lost_its_checkpoints_resumes_from_the_artifact_store(
    tmp_path: Path,
) -> None:
    every = 50
    with engine(tmp_path) as services:
        with_blobs(services, tmp_path, rows=8_000)
        spec = tabular_spec(
            "restored",
            max_epochs=6,  # long enough that a loaded machine cannot finish it before the kill
            hyperparameters="{batch_size: 8, log_every: 1}",
            checkpoint=f"{{every_steps: {every}}}",
        )
        services.training.create_pipeline(ADMIN, spec)
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "restored")
        wait_for(
            lambda: services.training.get_run(ADMIN, run.id).step > 3 * every, scheduler=scheduler
        )
        os.killpg(scheduler.active[run.id].handle.pid, signal.SIGKILL)
        killed = time.time()
        wait_for(
            lambda: services.training.get_run(ADMIN, run.id).status is RunStatus.PENDING,
            scheduler=scheduler,
        )
        stored = {c.step for c in services.training.checkpoints(ADMIN, run.id)}
        shutil.rmtree(services.training.run_dir(run.id) / "checkpoints")  # as on another host

        run = finished(services, run.id, timeout=180, scheduler=scheduler)
        assert run.status is RunStatus.COMPLETED, run.error
        _, after = _loss_steps_around(services.training.run_dir(run.id), killed)
        assert after[0] - 1 == max(stored)  # resumed from the newest stored checkpoint
