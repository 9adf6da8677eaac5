"""The loop helper the built-in trainers share: windows, the non-finite check, stop
requests, checkpoint timing and resuming, over a real context folder and real tensors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from modelhub.errors import TrainingDiverged
from modelhub.training.context import LocalContext
from modelhub.training.loop import TrainingLoop


def make_loop(ctx: LocalContext, state: dict[str, Any], **options: Any) -> TrainingLoop:
    return TrainingLoop(
        ctx,
        total_steps=options.pop("total_steps", 10),
        log_every=options.pop("log_every", 2),
        checkpoint_every=options.pop("checkpoint_every", 4),
        save=lambda: {"weight": state["weight"].clone()},
        restore=lambda saved: state.update(weight=saved["weight"].clone()),
        **options,
    )


def test_windows_log_the_mean_loss_and_checkpoints_come_on_time(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run")
    state = {"weight": torch.zeros(2)}
    loop = make_loop(ctx, state)
    for step in range(1, 7):
        state["weight"] += 1
        loop.add(torch.tensor(float(step)), samples=3)
        if loop.window_full:
            loop.log_window(learning_rate=0.1, epoch=0)
        if loop.checkpoint_due:
            loop.checkpoint()
    losses = [(m["step"], m["value"]) for m in ctx.metrics() if m["name"] == "loss"]
    assert losses == [(2, 1.5), (4, 3.5), (6, 5.5)]
    assert [p.name for p in ctx.checkpoint_dir.glob("step-*.pt")] == ["step-000000004.pt"]

    resumed_state = {"weight": torch.zeros(2)}
    resumed = make_loop(LocalContext(tmp_path / "run"), resumed_state)
    assert resumed.resume() is not None
    assert resumed.step == 4 and torch.equal(resumed_state["weight"], torch.full((2,), 4.0))


def test_a_non_finite_window_raises_and_is_never_checkpointed(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run")
    loop = make_loop(ctx, {"weight": torch.zeros(1)}, log_every=10)
    loop.add(torch.tensor(1.0), samples=1)
    loop.add(torch.tensor(math.inf), samples=1)
    with pytest.raises(TrainingDiverged) as caught:
        loop.checkpoint()
    assert caught.value.details == {"step": 2, "first_step_of_window": 1}
    assert list(ctx.checkpoint_dir.glob("*.pt")) == []


def test_stop_requests_are_seen_between_windows_and_the_last_state_is_kept(
    tmp_path: Path,
) -> None:
    ctx = LocalContext(tmp_path / "run")
    loop = make_loop(ctx, {"weight": torch.zeros(1)}, log_every=2, checkpoint_every=None)
    loop.add(torch.tensor(1.0), samples=1)
    ctx.stop_requested = True
    assert not loop.should_stop()  # mid-window: the window finishes first
    loop.add(torch.tensor(1.0), samples=1)
    loop.log_window(learning_rate=0.1, epoch=None)
    assert loop.should_stop() and loop.stopped
    loop.checkpoint_final()
    saved = ctx.latest_checkpoint()
    assert saved is not None and saved[0] == 2


def test_only_the_writer_logs_and_checkpoints(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run")
    loop = make_loop(ctx, {"weight": torch.zeros(1)}, writer=False)
    for _ in range(4):
        loop.add(torch.tensor(1.0), samples=1)
        if loop.window_full:
            loop.log_window(learning_rate=0.1, epoch=0)
    loop.checkpoint()
    assert ctx.metrics() == [] and ctx.latest_checkpoint() is None
    assert loop.step == 4
