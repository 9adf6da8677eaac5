"""The run context: job files and the best checkpoint kept beside the newest K."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from modelhub.errors import InvalidInput
from modelhub.training.context import LocalContext


def test_job_round_trips_keep_best(tmp_path: Path) -> None:
    ctx = LocalContext(
        tmp_path / "run",
        hyperparameters={"lr": 0.1},
        datasets={"d": tmp_path / "d.csv"},
        keep_checkpoints=2,
        keep_best=("val_accuracy", "max"),
    )
    job = ctx.write_job(trainer="script")
    assert json.loads(job.read_text())["keep_best"] == {"metric": "val_accuracy", "mode": "max"}
    again = LocalContext.from_job(job)
    assert again == ctx
    assert again.keep_best == ("val_accuracy", "max")

    plain = LocalContext(tmp_path / "plain")
    assert json.loads(plain.write_job().read_text())["keep_best"] is None
    assert LocalContext.from_job(plain.job_file).keep_best is None


def test_keep_best_mode_is_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="min or max"):
        LocalContext(tmp_path / "run", keep_best=("val_loss", "lowest"))


def test_best_checkpoint_follows_the_metric_not_the_recency(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run", keep_checkpoints=2, keep_best=("val_loss", "min"))
    assert ctx.best_checkpoint() is None and ctx.best() is None
    for step, val_loss in [(1, 0.9), (2, 0.4), (3, 0.6), (4, 0.5), (5, 0.7)]:
        ctx.log("val_loss", val_loss, step)
        ctx.checkpoint({"w": torch.full((2,), float(step))}, step)

    kept = sorted(p.name for p in ctx.checkpoint_dir.iterdir())
    assert kept == ["best.pt", "step-000000004.pt", "step-000000005.pt"]
    best = ctx.best_checkpoint()
    assert best is not None and best[0] == 2
    assert torch.equal(best[1]["w"], torch.full((2,), 2.0))
    assert json.loads(ctx.best_file.read_text()) == {
        "metric": "val_loss",
        "mode": "min",
        "value": 0.4,
        "step": 2,
    }
    latest = ctx.latest_checkpoint()
    assert latest is not None and latest[0] == 5


def test_a_resumed_context_keeps_comparing_against_the_saved_best(tmp_path: Path) -> None:
    first = LocalContext(tmp_path / "run", keep_best=("score", "max"))
    first.log("score", 0.8, 1)
    first.checkpoint({"w": torch.tensor([1.0])}, 1)

    resumed = LocalContext(tmp_path / "run", keep_best=("score", "max"))
    resumed.log("score", 0.7, 2)
    resumed.checkpoint({"w": torch.tensor([2.0])}, 2)
    best = resumed.best_checkpoint()
    assert best is not None and best[0] == 1
    resumed.log("score", 0.9, 3)
    resumed.checkpoint({"w": torch.tensor([3.0])}, 3)
    best = resumed.best_checkpoint()
    assert best is not None and best[0] == 3
    assert resumed.best() == {"metric": "score", "mode": "max", "value": 0.9, "step": 3}


def test_no_best_without_a_value_logged_at_or_before_the_step(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run", keep_best=("val_loss", "min"))
    ctx.log("loss", 0.1, 1)
    ctx.checkpoint({"w": torch.tensor([1.0])}, 1)
    ctx.log("val_loss", float("nan"), 2)
    ctx.checkpoint({"w": torch.tensor([2.0])}, 2)
    ctx.log("val_loss", 0.3, 9)
    ctx.checkpoint({"w": torch.tensor([3.0])}, 3)
    assert ctx.best_checkpoint() is None and not ctx.best_file.exists()
    ctx.checkpoint({"w": torch.tensor([9.0])}, 9)
    best = ctx.best_checkpoint()
    assert best is not None and best[0] == 9


def test_without_keep_best_nothing_extra_is_written(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run")
    ctx.log("val_loss", 0.1, 1)
    ctx.checkpoint({"w": torch.tensor([1.0])}, 1)
    assert [p.name for p in ctx.checkpoint_dir.iterdir()] == ["step-000000001.pt"]
    assert ctx.best_checkpoint() is None and not ctx.best_file.exists()
