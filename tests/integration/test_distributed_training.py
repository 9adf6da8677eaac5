"""Data-parallel runs (distributed: {workers: 2, backend: gloo}) through the real scheduler:
two DDP worker processes under torchrun on this host, rank 0 writing for the group."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub.domain.runs import Run, RunStatus
from modelhub.services import Services
from modelhub.training.executor import child_pids
from tests.integration.training_engine import (
    ADMIN,
    all_events,
    engine,
    finished,
    tabular_spec,
    wait_for,
    write_blobs,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

TWO_WORKERS = "{workers: 2, backend: gloo}"
LINES = ["the persona answers kindly and briefly.", "she remembers names and thanks people."] * 30


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One engine for the module, its scheduler running, with a small and a large dataset."""
    root = tmp_path_factory.mktemp("ddp")
    with engine(root, train_max_attempts=3) as services:
        services.datasets.register(ADMIN, write_blobs(root / "blobs.csv", 400), "blobs")
        services.datasets.register(ADMIN, write_blobs(root / "many.csv", 20_000), "many")
        corpus = root / "corpus.jsonl"
        corpus.write_text("".join(json.dumps({"text": line}) + "\n" for line in LINES))
        services.datasets.register(ADMIN, corpus, "corpus")
        services.training.start_scheduler()
        yield services


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone for us
    except OSError:
        return False


def _ranks(launcher: int) -> list[int]:
    """The launcher's children that are ranks (torch.multiprocessing's spawned processes;
    the launcher has multiprocessing's resource tracker as a child too)."""
    found = []
    for child in child_pids(launcher):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    found.append(child)
        except OSError:
            continue
    return found


def _group(services: Services, run_id: int) -> list[int]:
    """Every process of the run's group once both ranks are up: the launcher first."""
    found: list[int] = []

    def both_up() -> bool:
        run = services.training.get_run(ADMIN, run_id)
        if run.worker_pid is None:
            return False
        found[:] = [run.worker_pid, *_ranks(run.worker_pid)]
        return len(found) == 3

    wait_for(both_up)
    return [*found, *(pid for pid in child_pids(found[0]) if pid not in found)]


def _none_left(pids: list[int]) -> None:
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=15)


def _losses(run_dir: Path) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(m["step"], m["at"]) for m in map(json.loads, lines) if m["name"] == "loss"]


def _start(services: Services, spec: str, files: dict[str, bytes] | None = None) -> Run:
    services.training.create_pipeline(ADMIN, spec, files)
    return services.training.start(ADMIN, spec.split("\n", 1)[0].removeprefix("name: "))


def test_two_workers_train_as_well_as_one_and_rank_0_writes_once(services: Services) -> None:
    every = {"checkpoint": "{every_steps: 5, keep_last: 10}"}
    solo = _start(services, tabular_spec("solo", **every))
    # Half the batch on each of two ranks: the same global batch and steps as solo's.
    half = "{batch_size: 8}"
    ddp = _start(
        services, tabular_spec("ddp", distributed=TWO_WORKERS, hyperparameters=half, **every)
    )
    group = _group(services, ddp.id)
    solo, ddp = finished(services, solo.id), finished(services, ddp.id)
    assert (ddp.status, ddp.error, ddp.attempts) == (RunStatus.COMPLETED, None, 1)
    version = services.registry.get(f"ddp-model@{ddp.result_version}")
    assert version.lineage.source_run == str(ddp.id)
    _none_left(group)

    run_dir = services.training.run_dir(ddp.id)
    assert json.loads((run_dir / "job.json").read_text())["distributed"] == {
        "workers": 2,
        "backend": "gloo",
    }
    log = (run_dir / "logs.txt").read_text()
    assert "rank 0 of 2 (gloo)" in log and "rank 1 of 2 (gloo)" in log
    # 320 training rows, 160 a rank: 20 batches of 8 an epoch, 2 epochs, as solo's 16s.
    assert (ddp.step, solo.step) == (40, 40)
    steps = [step for step, _ in _losses(run_dir)]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # each window logged once
    saved = sorted(p.name for p in (run_dir / "checkpoints").glob("step-*.pt"))
    assert saved == [f"step-{step:09d}.pt" for step in range(5, 41, 5)]
    assert sorted(p.name for p in run_dir.glob("usage*.json")) == [
        "usage.rank-0.json",
        "usage.rank-1.json",
    ]
    assert ddp.metrics["val_accuracy"] > 0.9
    assert abs(ddp.metrics["val_accuracy"] - solo.metrics["val_accuracy"]) <= 0.05


def test_cancelling_a_distributed_run_stops_every_worker(services: Services) -> None:
    spec = tabular_spec(
        "ddp-long",
        datasets="[many]",
        max_epochs=50,
        hyperparameters="{batch_size: 8}",
        distributed=TWO_WORKERS,
    )
    run = _start(services, spec)
    group = _group(services, run.id)
    wait_for(lambda: services.training.get_run(ADMIN, run.id).step > 0)
    services.training.cancel(ADMIN, run.id)
    run = finished(services, run.id)
    assert run.status is RunStatus.CANCELLED and run.result_version is None
    _none_left(group)


def test_a_killed_worker_restarts_the_group_from_the_newest_checkpoint(
    services: Services,
) -> None:
    every = 200
    spec = tabular_spec(
        "ddp-fault",
        datasets="[many]",
        max_epochs=3,
        hyperparameters="{batch_size: 8, log_every: 10}",
        checkpoint=f"{{every_steps: {every}}}",
        distributed=TWO_WORKERS,
    )
    run = _start(services, spec)
    group = _group(services, run.id)
    run_dir = services.training.run_dir(run.id)
    wait_for(lambda: any((run_dir / "checkpoints").glob("step-*.pt")), timeout=120)
    os.kill(group[2], signal.SIGKILL)  # one of the two ranks
    killed = time.time()
    # The launcher ends the other rank and exits at once: the group is gone together.
    _none_left(group)

    run = finished(services, run.id, timeout=180)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.attempts == 2
    losses = _losses(run_dir)
    before = [step for step, at in losses if at <= killed]
    after = [step for step, at in losses if at > killed]
    resumed_from = after[0] - 10
    assert resumed_from > 0 and resumed_from % every == 0  # not from step 0
    assert before[-1] - resumed_from <= every  # lost at most one checkpoint interval
    total = 3 * (20_000 * 4 // 5 // 2 // 8)  # epochs x a rank's batches of its shard
    assert after[-1] == total and run.step == total
    statuses = [e.data["status"] for e in all_events(services, run.id) if e.kind == "status"]
    assert statuses == [
        *("queued", "running", "pending"),
        *("queued", "running", "finishing", "completed"),
    ]


def test_char_lm_trains_distributed(services: Services) -> None:
    small = "{context_length: 32, d_model: 32, n_heads: 4, batch_size: 8, steps: 12, log_every: 4}"
    spec = (
        "name: lm-ddp\ntype: pre_training\ntrainer: char_lm\ndatasets: [corpus]\n"
        f"max_epochs: 1\nhyperparameters: {small}\ndistributed: {TWO_WORKERS}\n"
        "result_model: {name: lm-ddp}\n"
    )
    run = finished(services, _start(services, spec).id, timeout=180)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.step == 12 and run.result_version is not None
    assert [step for step, _ in _losses(services.training.run_dir(run.id))] == [4, 8, 12]


# A user's script that trains data-parallel through the same loop helper as the built-ins.
DDP_SCRIPT = """
import json

import torch
from safetensors.torch import save_file

from modelhub.training.loop import TrainingLoop, shard_size


def train(ctx):
    if ctx.world_size != 2:
        raise ValueError(f"expected 2 ranks, not {ctx.world_size}")
    torch.manual_seed(ctx.seed + ctx.rank)  # DDP makes rank 0's start everyone's
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 3 * x + 1
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    batch, epochs = 8, int(ctx.hp("epochs", 1))
    per_epoch = shard_size(len(x)) // batch
    loop = TrainingLoop(
        ctx,
        total_steps=per_epoch * epochs,
        log_every=4,
        checkpoint_every=8,
        save=lambda: {"model": model.state_dict()},
        restore=lambda state: model.load_state_dict(state["model"]),
    )
    loop.resume()
    net = loop.parallel(model)
    for epoch in range(epochs):
        order = loop.order(epoch, len(x), ctx.seed + epoch)
        for number in range(per_epoch):
            index = order[number * batch : (number + 1) * batch]
            loss = torch.nn.functional.mse_loss(net(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loop.add(loss, len(index))
            if loop.window_full:
                loop.log_window(0.3, epoch)
            if loop.checkpoint_due:
                loop.checkpoint()
    loop.finish()
    if ctx.writer:
        save_file({"weight": model.weight.detach()}, str(ctx.output_dir / "model.safetensors"))
        (ctx.output_dir / "config.json").write_text(json.dumps({"ranks": ctx.world_size}))
    return {"weight": model.weight.item(), "rank": ctx.rank}
"""


def test_a_script_trains_distributed_through_the_context(services: Services) -> None:
    spec = tabular_spec(
        "ddp-script",
        trainer="script",
        script="{path: train.py}",
        max_epochs=4,
        distributed=TWO_WORKERS,
    )
    run = _start(services, spec, {"train.py": DDP_SCRIPT.encode()})
    run = finished(services, run.id, timeout=180)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.metrics["rank"] == 0  # rank 0's result is the run's
    assert run.metrics["weight"] == pytest.approx(3.0, abs=0.3)
    run_dir = services.training.run_dir(run.id)
    assert [step for step, _ in _losses(run_dir)] == [4, 8, 12, 16]
    assert json.loads((run_dir / "output" / "config.json").read_text()) == {"ranks": 2}
