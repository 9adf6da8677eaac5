"""The training loop of the text classifier (see `text_classifier` for the model and output).

Distributed (DDP, see `TrainingLoop`): each rank trains the head (and the tuned encoder
layers) on its shard of every epoch, batch_size is per rank, rank 0 writes the output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from modelhub.errors import InvalidInput
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.loop import TrainingLoop, shard_size
from modelhub.training.trainers._best import logged_at
from modelhub.training.trainers.text_classifier import (
    TextClassifier,
    base_identity,
    hyperparameters,
    load,
    load_encoder,
    make_head,
    minilm_path,
    read_examples,
    split_indices,
    write_output,
)


def run(ctx: LocalContext) -> tuple[TrainResult, TextClassifier]:
    hp = hyperparameters(ctx)
    examples = read_examples(ctx.dataset(), hp["text_field"], hp["label_field"])
    classes = sorted({e.label for e in examples})
    texts = [e.text for e in examples]
    labels = [classes.index(e.label) for e in examples]
    train_idx, val_idx = split_indices(labels, ctx.validation_split, ctx.seed)

    torch.manual_seed(ctx.seed)
    origin = Start.of(ctx)
    encoder, base, base_folder = origin.encoder, origin.base, origin.base_folder
    dim = int(encoder.get_embedding_dimension() or 0)
    head = make_head(dim, len(classes), hp["hidden"]).to(ctx.device)
    origin.carry_head(head, classes, hp["hidden"])
    model = TextClassifier(encoder, head, classes)

    tuned_names = unfreeze(encoder, hp["unfreeze_layers"] if hp["tune"] == "last_layers" else 0)
    encoder_params = [p for n, p in encoder.named_parameters() if n in tuned_names]
    optimizer = torch.optim.AdamW(
        [{"params": list(head.parameters())}, {"params": encoder_params}],
        lr=hp["learning_rate"],
    )

    batches_per_epoch = -(-shard_size(len(train_idx)) // hp["batch_size"])
    loop = TrainingLoop(
        ctx,
        total_steps=batches_per_epoch * hp["epochs"],
        log_every=hp["log_every"],
        checkpoint_every=hp["checkpoint_every"],
        save=lambda: checkpoint_state(head, optimizer, encoder, tuned_names),
        restore=lambda state: restore(head, encoder, optimizer, state),
        device=ctx.device,
    )
    resumed = loop.resume()
    start_epoch = int(resumed["epoch"]) if resumed is not None else 0
    start_batch = int(resumed.get("batch", 0)) if resumed is not None else 0

    cached: torch.Tensor | None = None
    if hp["tune"] == "head":
        encoder.eval()
        cached = model.embed(texts).to(ctx.device)
    target = torch.tensor(labels, device=ctx.device)
    head_net = loop.parallel(head)
    encoder_net = loop.parallel(encoder) if cached is None else encoder

    def embed_batch(indices: list[int], through: Any = encoder) -> torch.Tensor:
        if cached is not None:
            return cached[indices]
        features = encoder.preprocess([texts[i] for i in indices])
        features = {k: v.to(ctx.device) if hasattr(v, "to") else v for k, v in features.items()}
        out: torch.Tensor = through(features)["sentence_embedding"]
        return out

    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, hp["epochs"]):
        head.train()
        if cached is None:
            encoder.train()
        order = loop.order(epoch, len(train_idx), ctx.seed + epoch)
        first = start_batch if epoch == start_epoch else 0
        for number in range(first, batches_per_epoch):
            if loop.should_stop():  # only ever true between windows
                loop.checkpoint(epoch=epoch, batch=number)
                break
            start = number * hp["batch_size"]
            with loop.phase("data"):
                batch = [train_idx[i] for i in order[start : start + hp["batch_size"]].tolist()]
            with loop.phase("forward"):  # tokenising included: it is per batch, like the encoder
                logits = head_net(embed_batch(batch, encoder_net))
                loss = torch.nn.functional.cross_entropy(logits, target[batch])
            with loop.phase("backward"):
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
            with loop.phase("optimizer"):
                optimizer.step()
            loop.add(loss, len(batch))
            if loop.window_full or number == batches_per_epoch - 1:
                accuracy = (logits.argmax(-1) == target[batch]).float().mean().item()
                loop.log("accuracy", accuracy)
                mean_loss = loop.log_window(optimizer.param_groups[0]["lr"], epoch)
                metrics.update({"loss": mean_loss, "accuracy": accuracy})
            if loop.checkpoint_due and number < batches_per_epoch - 1:
                if loop.window_steps:
                    metrics["loss"] = loop.log_window(optimizer.param_groups[0]["lr"], epoch)
                loop.checkpoint(epoch=epoch, batch=number + 1)
        if loop.stopped:
            if val_idx:  # a stopped run reports where it stopped
                metrics.update(
                    evaluate(head, embed_batch, target, val_idx, encoder, cached is None)
                )
            break
        if val_idx:
            with loop.phase("validation"):
                metrics.update(
                    evaluate(head, embed_batch, target, val_idx, encoder, cached is None)
                )
            loop.log("val_loss", metrics["val_loss"])
            loop.log("val_accuracy", metrics["val_accuracy"])
        loop.checkpoint(epoch=epoch + 1, batch=0)

    best_step = loop.finish()
    if best_step is not None:
        if best_step != loop.step:
            metrics = logged_at(ctx, best_step, ("loss", "accuracy"))
            if val_idx:
                metrics.update(
                    evaluate(head, embed_batch, target, val_idx, encoder, cached is None)
                )
        metrics["best_step"] = float(best_step)
    step = loop.step
    stopped = loop.stopped
    if stopped:
        metrics["stopped"] = 1.0
    encoder.eval()
    head.eval()
    keep = tuned_names | origin.tuned_before
    tuned: dict[str, torch.Tensor] = {n: p for n, p in encoder.named_parameters() if n in keep}
    if loop.writer:
        write_output(ctx, model, hp, base, base_folder, tuned)
    metrics["steps"] = float(step)
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir), model


@dataclass
class Start:
    """What a run starts from: MiniLM, another sentence-transformers folder, or a
    text classifier trained before (fine_tuning from a registered version).

    From an earlier classifier the run keeps its encoder, including the layers
    that run tuned (they are saved again), and its head when the classes and the
    head's shape are unchanged; new classes get a new head.
    """

    encoder: Any
    base: str
    base_folder: Path
    previous: TextClassifier | None = None
    previous_hidden: int = 0
    tuned_before: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, ctx: LocalContext) -> Start:
        folder = ctx.base_model
        config_file = folder / "config.json" if folder is not None else None
        if folder is None or config_file is None or not config_file.exists():
            base_folder = folder or minilm_path()
            return cls(
                load_encoder(base_folder, ctx.device), base_identity(base_folder), base_folder
            )
        config = json.loads(config_file.read_text())
        if config.get("trainer") != "text_classifier":
            raise InvalidInput(
                f"base model {folder} is a {config.get('trainer')!r} model, not a text "
                "classifier or a sentence-transformers folder",
                {"field": "base_model"},
            )
        previous = load(folder, ctx.device)
        saved = safe_open_keys(folder / "model.safetensors")
        return cls(
            encoder=previous.encoder,
            base=str(config["base"]),
            base_folder=folder / "encoder" if (folder / "encoder").exists() else minilm_path(),
            previous=previous,
            previous_hidden=int(config["head"]["hidden"]),
            tuned_before={k.removeprefix("encoder.") for k in saved if k.startswith("encoder.")},
        )

    def carry_head(self, head: torch.nn.Module, classes: list[str], hidden: int) -> None:
        if self.previous is None:
            return
        if self.previous.classes == classes and self.previous_hidden == hidden:
            head.load_state_dict(self.previous.head.state_dict())


def safe_open_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as weights:
        return list(weights.keys())


def restore(
    head: torch.nn.Module, encoder: Any, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    load_weights(head, encoder, state)
    optimizer.load_state_dict(state["optimizer"])


def load_weights(head: torch.nn.Module, encoder: Any, state: dict[str, Any]) -> None:
    """Put a checkpoint's head and fine-tuned encoder weights into the model."""
    head.load_state_dict(state["head"])
    params = dict(encoder.named_parameters())
    with torch.no_grad():
        for name, tensor in state.get("encoder", {}).items():
            params[name].copy_(tensor)


def unfreeze(encoder: Any, layers: int) -> set[str]:
    """Freeze the encoder except its last `layers` transformer layers; their parameter names."""
    for param in encoder.parameters():
        param.requires_grad = False
    if layers <= 0:
        return set()
    blocks = encoder[0].auto_model.encoder.layer
    if layers > len(blocks):
        raise InvalidInput(
            f"unfreeze_layers is {layers} but the encoder has {len(blocks)} layers",
            {"field": "unfreeze_layers"},
        )
    for block in blocks[-layers:]:
        for param in block.parameters():
            param.requires_grad = True
    return {n for n, p in encoder.named_parameters() if p.requires_grad}


def evaluate(
    head: torch.nn.Module,
    embed_batch: Any,
    target: torch.Tensor,
    val_idx: list[int],
    encoder: Any,
    end_to_end: bool,
) -> dict[str, float]:
    head.eval()
    if end_to_end:
        encoder.eval()
    with torch.no_grad():
        logits = torch.cat(
            [head(embed_batch(val_idx[i : i + 64])) for i in range(0, len(val_idx), 64)]
        )
        loss = torch.nn.functional.cross_entropy(logits, target[val_idx]).item()
        accuracy = (logits.argmax(-1) == target[val_idx]).float().mean().item()
    return {"val_loss": loss, "val_accuracy": accuracy}


def checkpoint_state(
    head: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    encoder: Any,
    tuned_names: set[str],
) -> dict[str, Any]:
    return {
        "head": head.state_dict(),
        "optimizer": optimizer.state_dict(),
        "encoder": {
            n: p.detach().clone() for n, p in encoder.named_parameters() if n in tuned_names
        },
    }
