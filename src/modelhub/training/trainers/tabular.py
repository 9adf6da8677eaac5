"""Tabular classifier: an MLP over numeric columns of a CSV, JSONL or Parquet file.

Hyperparameters: `TabularHyperparameters` (label, features, hidden, epochs, batch_size,
learning_rate, weight_decay, checkpoint_every: steps, else only at epoch ends, log_every).

Resumes from the newest checkpoint of the run, mid-epoch included: each epoch's
shuffle depends only on the seed and the epoch, so the batches already trained
are skipped, not repeated.

Distributed (DDP, see `TrainingLoop`): each rank trains on its shard of every epoch,
batch_size is per rank, and rank 0 writes the output.

With `keep_best` set, the output is the best checkpoint's model (see `TrainingLoop`), its
validation metrics measured again and `best_step` naming its step.
"""

from __future__ import annotations

import math
from typing import Any

from modelhub.domain.hyperparameters import TabularHyperparameters
from modelhub.domain.trainer_catalog import BUILTIN_TRAINERS
from modelhub.networks.tabular import TRAINER as TRAINER
from modelhub.networks.tabular import TabularPredictor as TabularPredictor
from modelhub.networks.tabular import build_model as build_model
from modelhub.networks.tabular import load as load
from modelhub.networks.tabular import write_output
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.loop import TrainingLoop, shard_size
from modelhub.training.trainers._best import logged_at
from modelhub.training.trainers.tabular_data import TabularData, load_tabular, split_rows

# The trainer interface's declarations (docs/plugins.md): this trainer's row of the
# domain's table, which checks specs without importing this module.
_TRAITS = BUILTIN_TRAINERS.traits["tabular_classifier"]
pipeline_types = _TRAITS.pipeline_types
result_type = _TRAITS.result_type
hyperparameter_model = _TRAITS.hyperparameters
base_trainer = _TRAITS.base_trainer
data_parallel = _TRAITS.data_parallel


def evaluate(model: Any, x: Any, y: Any) -> tuple[float, float]:
    """Cross-entropy loss and accuracy of `model` on (x, y), without gradients."""
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

    hp: TabularHyperparameters = TabularHyperparameters.parse(ctx.hyperparameters)
    hidden, epochs, batch_size = list(hp.hidden), hp.epochs, hp.batch_size
    checkpoint_every, log_every = hp.checkpoint_every, hp.log_every
    data: TabularData = load_tabular(ctx.dataset(), hp.label, hp.features)
    train_idx, val_idx = split_rows(len(data.y), ctx.validation_split, ctx.seed)
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
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
    )
    n_train = len(y_train)
    steps_per_epoch = math.ceil(shard_size(n_train) / batch_size)
    total_steps = steps_per_epoch * epochs

    epoch_loss_sum, epoch_batches = 0.0, 0

    def restore(state: dict[str, Any]) -> None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    loop = TrainingLoop(
        ctx,
        total_steps=total_steps,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        save=lambda: {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch_loss_sum": epoch_loss_sum,
            "epoch_batches": epoch_batches,
        },
        restore=restore,
        device=ctx.device,
    )
    net = loop.parallel(model)
    start_epoch, start_batch = 0, 0
    resumed = loop.resume()
    if resumed is not None:
        start_epoch, start_batch = int(resumed["epoch"]), int(resumed["batch"])
        epoch_loss_sum = float(resumed["epoch_loss_sum"])
        epoch_batches = int(resumed["epoch_batches"])

    def fold_window(epoch: int, log: bool) -> None:
        """Close the window (logging it, or not) and fold its steps into the epoch's loss."""
        nonlocal epoch_loss_sum, epoch_batches
        steps = loop.window_steps
        if steps == 0:
            return
        lr = optimizer.param_groups[0]["lr"]
        mean_loss = loop.log_window(lr, epoch) if log else loop.close_window()
        epoch_loss_sum += mean_loss * steps
        epoch_batches += steps

    train_loss = epoch_loss_sum / epoch_batches if epoch_batches else float("nan")
    val_loss, val_accuracy = float("nan"), float("nan")
    model.train()
    for epoch in range(start_epoch, epochs):
        order = loop.order(epoch, n_train, ctx.seed * 1_000_003 + epoch).to(device)
        first = start_batch if epoch == start_epoch else 0
        loop.begin_window()
        for batch in range(first, steps_per_epoch):
            if loop.should_stop():
                loop.checkpoint(epoch=epoch, batch=batch)
                break
            with loop.phase("data"):
                idx = order[batch * batch_size : (batch + 1) * batch_size]
                x_batch, y_batch = x_train[idx], y_train[idx]
            with loop.phase("forward"):
                loss = F.cross_entropy(net(x_batch), y_batch)
            with loop.phase("backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
            with loop.phase("optimizer"):
                optimizer.step()
            loop.add(loss, len(idx))
            last = batch == steps_per_epoch - 1
            if loop.window_full or last:
                fold_window(epoch, log=True)
            if last:
                train_loss = epoch_loss_sum / epoch_batches
                with loop.phase("validation"):
                    val_loss, val_accuracy = evaluate(model, x_val, y_val)
                loop.log("train_loss", train_loss)
                loop.log("val_loss", val_loss)
                loop.log("val_accuracy", val_accuracy)
                epoch_loss_sum, epoch_batches = 0.0, 0
                loop.checkpoint(epoch=epoch + 1, batch=0)
            elif loop.checkpoint_due:
                fold_window(epoch, log=False)
                loop.checkpoint(epoch=epoch, batch=batch + 1)
        if loop.stopped:
            break

    step, stopped = loop.step, loop.stopped
    if math.isnan(val_loss) or stopped:  # a stopped run reports where it stopped
        val_loss, val_accuracy = evaluate(model, x_val, y_val)
    if math.isnan(train_loss):  # resumed from the final checkpoint: no epoch trained here
        train_loss = logged_at(ctx, step, ("train_loss",)).get("train_loss", train_loss)
    metrics = {"val_accuracy": val_accuracy, "val_loss": val_loss, "train_loss": train_loss}
    best_step = loop.finish()
    if best_step is not None:
        if best_step != step:
            best_loss, best_accuracy = evaluate(model, x_val, y_val)
            metrics = {"val_accuracy": best_accuracy, "val_loss": best_loss}
            metrics.update(logged_at(ctx, best_step, ("train_loss",)))
        metrics["best_step"] = float(best_step)
    if loop.writer:
        write_output(
            ctx.output_dir, model, data.features, data.label, data.classes, hidden, mean, std
        )
    if stopped:
        metrics["stopped_at_step"] = float(step)
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir)
