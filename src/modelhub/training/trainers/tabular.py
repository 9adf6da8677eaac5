"""Tabular classifier: an MLP over numeric columns of a CSV, JSONL or Parquet file.

Hyperparameters (all optional): `label` ("label"), `features` (every numeric column
but the label), `hidden` ([64]), `epochs` (10), `batch_size` (32), `learning_rate`
(1e-3), `weight_decay` (0), `checkpoint_every` (steps; default only at epoch ends),
`log_every` (steps between metric lines; default 10).

Resumes from the newest checkpoint of the run, mid-epoch included: each epoch's
shuffle depends only on the seed and the epoch, so the batches already trained
are skipped, not repeated.

With `keep_best` set, the output is the best checkpoint's model (see `_best`), its
validation metrics measured again and `best_step` naming its step.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.networks.tabular import TRAINER as TRAINER
from modelhub.networks.tabular import TabularPredictor as TabularPredictor
from modelhub.networks.tabular import build_model as build_model
from modelhub.networks.tabular import load as load
from modelhub.networks.tabular import write_output
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.trainers._best import best_state, logged_at
from modelhub.training.trainers.tabular_data import TabularData, load_tabular


def _int_list(value: Any, name: str) -> list[int]:
    if isinstance(value, int):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
        raise InvalidInput(f"{name} must be a list of positive integers", {"field": name})
    return list(value)


def _positive_int(ctx: LocalContext, name: str, default: int | None) -> int | None:
    value = ctx.hp(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r}", {"field": name})
    return value


def _split(n: int, fraction: float, seed: int) -> tuple[Any, Any]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(n * fraction)) if fraction > 0 and n > 1 else 0
    return order[n_val:], order[:n_val]


def _evaluate(model: Any, x: Any, y: Any) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = float(F.cross_entropy(logits, y))
        accuracy = float((logits.argmax(dim=1) == y).float().mean())
    model.train()
    return loss, accuracy


def train(ctx: LocalContext) -> TrainResult:
    """Train the MLP; raises InvalidInput for unusable data, TrainingDiverged on NaN loss."""
    import torch
    import torch.nn.functional as F

    label = str(ctx.hp("label", "label"))
    features = ctx.hp("features", None)
    if features is not None and not (
        isinstance(features, list) and all(isinstance(f, str) for f in features) and features
    ):
        raise InvalidInput("features must be a non-empty list of column names")
    hidden = _int_list(ctx.hp("hidden", [64]), "hidden")
    epochs = _positive_int(ctx, "epochs", 10) or 10
    batch_size = _positive_int(ctx, "batch_size", 32) or 32
    checkpoint_every = _positive_int(ctx, "checkpoint_every", None)
    log_every = _positive_int(ctx, "log_every", 10) or 10
    learning_rate = float(ctx.hp("learning_rate", 1e-3))
    weight_decay = float(ctx.hp("weight_decay", 0.0))

    data: TabularData = load_tabular(ctx.dataset(), label, features)
    train_idx, val_idx = _split(len(data.y), ctx.validation_split, ctx.seed)
    mean = data.x[train_idx].mean(axis=0)
    std = data.x[train_idx].std(axis=0)
    std[std == 0] = 1.0
    mean_t = torch.from_numpy(mean)
    std_t = torch.from_numpy(std)
    device = torch.device(ctx.device)
    x_all = ((torch.from_numpy(data.x) - mean_t) / std_t).to(device)
    y_all = torch.from_numpy(data.y).to(device)
    x_train, y_train = x_all[torch.from_numpy(train_idx)], y_all[torch.from_numpy(train_idx)]
    if len(val_idx):
        x_val, y_val = x_all[torch.from_numpy(val_idx)], y_all[torch.from_numpy(val_idx)]
    else:
        x_val, y_val = x_train, y_train

    torch.manual_seed(ctx.seed)
    model = build_model(len(data.features), hidden, len(data.classes)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    n_train = len(y_train)
    steps_per_epoch = math.ceil(n_train / batch_size)
    total_steps = steps_per_epoch * epochs

    start_epoch, start_batch, step = 0, 0, 0
    epoch_loss_sum, epoch_batches = 0.0, 0
    saved = ctx.latest_checkpoint()
    if saved is not None:
        step, state = saved
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InvalidInput(
                f"the run's checkpoint at step {step} does not fit this model: {exc}",
                {"step": step},
            ) from exc
        start_epoch, start_batch = int(state["epoch"]), int(state["batch"])
        epoch_loss_sum = float(state["epoch_loss_sum"])
        epoch_batches = int(state["epoch_batches"])

    def save(epoch: int, batch: int) -> None:
        ctx.checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "batch": batch,
                "epoch_loss_sum": epoch_loss_sum,
                "epoch_batches": epoch_batches,
            },
            step,
        )

    train_loss = epoch_loss_sum / epoch_batches if epoch_batches else float("nan")
    val_loss, val_accuracy = float("nan"), float("nan")
    stopped = False
    window_loss = torch.zeros((), device=device)
    window_steps = 0

    def flush_window() -> float:
        """Fold the steps since the last flush into the epoch's loss; check it is finite."""
        nonlocal window_steps, epoch_loss_sum, epoch_batches
        if window_steps == 0:
            return float("nan")
        mean_loss = float(window_loss) / window_steps
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(
                f"loss became {mean_loss} by step {step}; try a lower learning_rate",
                {"step": step, "first_step_of_window": step - window_steps + 1},
            )
        epoch_loss_sum += mean_loss * window_steps
        epoch_batches += window_steps
        window_loss.zero_()
        window_steps = 0
        return mean_loss

    model.train()
    for epoch in range(start_epoch, epochs):
        order = torch.randperm(
            n_train, generator=torch.Generator().manual_seed(ctx.seed * 1_000_003 + epoch)
        ).to(device)
        first = start_batch if epoch == start_epoch else 0
        window_loss.zero_()
        window_steps, window_samples, window_start = 0, 0, time.perf_counter()
        for batch in range(first, steps_per_epoch):
            if window_steps == 0 and ctx.should_stop():  # once per log window
                flush_window()
                save(epoch, batch)
                stopped = True
                break
            idx = order[batch * batch_size : (batch + 1) * batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            step += 1
            window_loss += loss.detach()
            window_steps += 1  # noqa: SIM113 (flush_window resets it)
            window_samples += len(idx)
            last = batch == steps_per_epoch - 1
            if window_steps == log_every or last:
                mean_loss = flush_window()
                now = time.perf_counter()
                ctx.log("loss", mean_loss, step)
                ctx.log("learning_rate", optimizer.param_groups[0]["lr"], step)
                ctx.log("samples_per_s", window_samples / max(now - window_start, 1e-9), step)
                ctx.progress(step, total_steps, epoch)
                window_samples, window_start = 0, time.perf_counter()
            if last:
                train_loss = epoch_loss_sum / epoch_batches
                val_loss, val_accuracy = _evaluate(model, x_val, y_val)
                ctx.log("train_loss", train_loss, step)
                ctx.log("val_loss", val_loss, step)
                ctx.log("val_accuracy", val_accuracy, step)
                epoch_loss_sum, epoch_batches = 0.0, 0
                save(epoch + 1, 0)
            elif checkpoint_every and step % checkpoint_every == 0:
                flush_window()
                save(epoch, batch + 1)
        if stopped:
            break

    if math.isnan(val_loss):
        val_loss, val_accuracy = _evaluate(model, x_val, y_val)
    if math.isnan(train_loss):  # resumed from the final checkpoint: no epoch trained here
        train_loss = logged_at(ctx, step, ("train_loss",)).get("train_loss", train_loss)
    metrics = {"val_accuracy": val_accuracy, "val_loss": val_loss, "train_loss": train_loss}
    best = best_state(ctx, step)
    if best is not None:
        best_step, best_model = best
        if best_model is not None:
            model.load_state_dict(best_model["model"])
            best_loss, best_accuracy = _evaluate(model, x_val, y_val)
            metrics = {"val_accuracy": best_accuracy, "val_loss": best_loss}
            metrics.update(logged_at(ctx, best_step, ("train_loss",)))
        metrics["best_step"] = float(best_step)
    write_output(ctx.output_dir, model, data.features, data.label, data.classes, hidden, mean, std)
    if stopped:
        metrics["stopped_at_step"] = float(step)
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir)
