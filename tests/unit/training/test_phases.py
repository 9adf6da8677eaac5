"""A profiling run: the loop stops after its budget and says where the time went."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelhub.training.context import LocalContext
from modelhub.training.phases import NO_PHASE, PHASES, PhaseClock
from modelhub.training.trainers import tabular


def blobs(path: Path, rows: int = 200) -> Path:
    rng = np.random.default_rng(0)
    lines = ["a,b,label"]
    for i in range(rows):
        label = i % 2
        lines.append(f"{rng.normal(label * 3, 1):.3f},{rng.normal(-label * 3, 1):.3f},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_profiling_run_stops_at_its_budget_and_times_each_phase(tmp_path: Path) -> None:
    ctx = LocalContext(
        run_dir=tmp_path / "run",
        hyperparameters={"batch_size": 4, "epochs": 5, "checkpoint_every": 5, "log_every": 3},
        datasets={"d": blobs(tmp_path / "d.csv")},
        profile_steps=30,
    )
    result = tabular.train(ctx)
    figures = ctx.profile
    assert figures["profile_steps"] == 30 and figures["profile_samples"] == 120
    assert result.metrics["stopped_at_step"] == 30
    assert 0 <= result.metrics["val_accuracy"] <= 1  # measured where it stopped
    for phase in ("data", "forward", "backward", "optimizer", "checkpoint", "logging"):
        assert figures[f"profile_{phase}_s"] > 0, phase
    # 6 interval checkpoints in 30 steps; the stop's own checkpoint is after the budget
    assert figures["profile_checkpoints"] == 6
    timed = sum(figures[f"profile_{p}_s"] for p in (*PHASES, "other"))
    assert timed == figures["profile_seconds"] or abs(timed - figures["profile_seconds"]) < 1e-6
    assert figures["profile_samples_per_s"] == 120 / figures["profile_seconds"]


def test_a_normal_run_times_nothing(tmp_path: Path) -> None:
    ctx = LocalContext(
        run_dir=tmp_path / "run",
        hyperparameters={"batch_size": 32, "epochs": 1},
        datasets={"d": blobs(tmp_path / "d.csv")},
    )
    result = tabular.train(ctx)
    assert ctx.profile == {}
    assert not any(name.startswith("profile_") for name in result.metrics)
    assert "stopped_at_step" not in result.metrics


def test_a_frozen_clock_hands_out_the_no_op() -> None:
    clock = PhaseClock()
    with clock.phase("forward"):
        pass
    clock.count(4)
    clock.freeze()
    assert clock.phase("forward") is NO_PHASE
    clock.count(4)  # after the budget: not counted
    figures = clock.figures()
    assert figures["profile_steps"] == 1 and figures["profile_samples"] == 4
