"""A small character-level language model, trained from scratch or fine-tuned.

A decoder-only transformer (token and position embeddings, pre-LN blocks with
causal self-attention, an MLP, a final LayerNorm and an output head tied to the
token embedding) over the characters of a text corpus. The corpus is a plain
text file, or JSONL whose rows carry a "text" field. With `ctx.base_model` set,
training continues from a previous char_lm output and keeps its vocabulary:
characters it never saw map to the unknown token.

With `keep_best` set, the final state is checkpointed too, and the output is the
best checkpoint's model (see `TrainingLoop`) with its validation loss measured again.

Distributed (DDP, see `TrainingLoop`): each rank draws its own batches (a stream seeded
by the run's seed, its rank and the step it starts from), an epoch has as many steps
as a rank's share of the text gives, batch_size is per rank, and rank 0 writes the output.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelhub.domain.hyperparameters import CharLMHyperparameters
from modelhub.domain.trainer_catalog import BUILTIN_TRAINERS
from modelhub.errors import InvalidInput
from modelhub.networks.char_lm import UNKNOWN_CHAR as UNKNOWN_CHAR
from modelhub.networks.char_lm import UNKNOWN_ID as UNKNOWN_ID
from modelhub.networks.char_lm import CharLM as CharLM
from modelhub.networks.char_lm import CharLMConfig as CharLMConfig
from modelhub.networks.char_lm import CharTransformer as CharTransformer
from modelhub.networks.char_lm import load as load
from modelhub.networks.char_lm import write_output
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.loop import TrainingLoop, shard_size
from modelhub.training.trainers._best import logged_at

# The trainer interface's declarations (docs/plugins.md): this trainer's row of the
# domain's table, which checks specs without importing this module.
_TRAITS = BUILTIN_TRAINERS.traits["char_lm"]
pipeline_types = _TRAITS.pipeline_types
result_type = _TRAITS.result_type
hyperparameter_model = _TRAITS.hyperparameters
base_trainer = _TRAITS.base_trainer
data_parallel = _TRAITS.data_parallel


def read_corpus(path: Path) -> str:
    """The text of a plain .txt file, or of a JSONL file's "text" fields joined by newlines."""
    if path.suffix.lower() != ".jsonl":
        return path.read_text(encoding="utf-8")
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number} of {path.name} is not JSON: {exc}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InvalidInput(
                f'line {number} of {path.name} has no string "text" field', {"line": number}
            )
        texts.append(row["text"])
    return "\n".join(texts)


def _config_for(
    ctx: LocalContext, hp: CharLMHyperparameters, text: str
) -> tuple[CharLMConfig, dict[str, Tensor] | None]:
    if ctx.base_model is not None:
        base = load(ctx.base_model)
        return base.config, base.model.state_dict()
    config = CharLMConfig(
        vocab="".join(sorted(set(text))),
        context_length=hp.context_length,
        d_model=hp.d_model,
        n_layers=hp.n_layers,
        n_heads=hp.n_heads,
        dropout=hp.dropout,
    )
    return config, None


def _learning_rate(hp: CharLMHyperparameters, step: int, total: int) -> float:
    peak, warmup = hp.learning_rate, hp.warmup_steps
    if warmup and step <= warmup:
        return peak * step / warmup
    if hp.lr_schedule != "cosine":
        return peak
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(ctx: LocalContext) -> TrainResult:
    """Train on `ctx.dataset()` and write model.safetensors + config.json to `ctx.output_dir`.

    Raises InvalidInput for an empty or too-short corpus or bad hyperparameters, and
    TrainingDiverged when the loss stops being finite.
    """
    hp: CharLMHyperparameters = CharLMHyperparameters.parse(ctx.hyperparameters)
    text = read_corpus(ctx.dataset())
    if not text:
        raise InvalidInput("the corpus is empty")
    resumed = ctx.latest_checkpoint()
    if resumed is not None:
        config = CharLMConfig.from_json(resumed[1]["config"])
        base_state = None
    else:
        config, base_state = _config_for(ctx, hp, text)
    needed = config.context_length + 1
    if len(text) < needed:
        raise InvalidInput(
            f"the corpus has {len(text)} characters, fewer than context_length + 1 ({needed})",
            {"characters": len(text), "context_length": config.context_length},
        )
    ids = torch.tensor(config.encode(text), dtype=torch.long)
    n_val = int(len(ids) * ctx.validation_split)
    train_ids, val_ids = ids[: len(ids) - n_val], ids[len(ids) - n_val :]
    if len(train_ids) < needed:
        raise InvalidInput(
            f"after the validation split the training text has {len(train_ids)} characters,"
            f" fewer than context_length + 1 ({needed})",
            {"characters": len(train_ids), "validation_split": ctx.validation_split},
        )
    with torch.random.fork_rng(devices=[]):
        return _train_loop(ctx, hp, config, train_ids, val_ids, base_state, resumed)


def _train_loop(
    ctx: LocalContext,
    hp: CharLMHyperparameters,
    config: CharLMConfig,
    train_ids: Tensor,
    val_ids: Tensor,
    base_state: dict[str, Tensor] | None,
    resumed: tuple[int, dict[str, Any]] | None,
) -> TrainResult:
    torch.manual_seed(ctx.seed)
    model = CharTransformer(config).to(ctx.device)
    if base_state is not None:
        model.load_state_dict(base_state)
    batch_size = hp.batch_size
    steps_per_epoch = max(1, shard_size(len(train_ids)) // (batch_size * config.context_length))
    total = hp.steps if hp.steps is not None else hp.epochs * steps_per_epoch
    log_every, eval_every, checkpoint_every = hp.log_every, hp.eval_every, hp.checkpoint_every
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
    )
    generator = torch.Generator().manual_seed(ctx.seed)

    def restore(state: dict[str, Any]) -> None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])

    loop = TrainingLoop(
        ctx,
        total_steps=total,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        save=lambda: {
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        },
        restore=restore,
        device=ctx.device,
    )
    if resumed is not None:
        loop.resume()
    if loop.world_size > 1:  # each rank its own batches; rank 0's saved stream is not theirs
        generator.manual_seed(ctx.seed + 7_919 * loop.rank + 1_000_003 * loop.step)
    net = loop.parallel(model)

    metrics: dict[str, float] = {}
    while loop.step < total and not loop.should_stop():
        step = loop.step + 1
        lr = _learning_rate(hp, step, total)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with loop.phase("data"):
            inputs, targets = _batch(train_ids, batch_size, config.context_length, generator)
            inputs, targets = inputs.to(ctx.device), targets.to(ctx.device)
        model.train()
        with loop.phase("forward"):
            logits = net(inputs)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        with loop.phase("backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
        with loop.phase("optimizer"):
            nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
            optimizer.step()
        loop.add(loss, batch_size)
        if loop.window_full or step == total:
            metrics["loss"] = loop.log_window(lr, epoch=step // steps_per_epoch)
        if len(val_ids) >= 2 and (step % eval_every == 0 or step == total):
            with loop.phase("validation"):
                metrics["val_loss"] = _evaluate(model, val_ids, config.context_length, ctx.device)
            loop.log("val_loss", metrics["val_loss"])
        if loop.checkpoint_due:
            loop.checkpoint()
    loop.checkpoint_final()
    step, stopped = loop.step, loop.stopped
    if stopped and len(val_ids) >= 2:  # a stopped run reports where it stopped
        metrics["val_loss"] = _evaluate(model, val_ids, config.context_length, ctx.device)
    best_step = loop.finish()
    if best_step is not None:
        if best_step != step:
            metrics = logged_at(ctx, best_step, ("loss",))
            if len(val_ids) >= 2:
                metrics["val_loss"] = _evaluate(model, val_ids, config.context_length, ctx.device)
        metrics["best_step"] = float(best_step)
    metrics["steps"] = float(step)
    if stopped:
        metrics["stopped"] = 1.0
    if "val_loss" in metrics:
        metrics["val_perplexity"] = math.exp(metrics["val_loss"])
    if loop.writer:
        write_output(ctx.output_dir, model, config)
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir)


def _batch(
    ids: Tensor, batch_size: int, length: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    starts = torch.randint(0, len(ids) - length, (batch_size,), generator=generator)
    rows = torch.stack([ids[s : s + length + 1] for s in starts.tolist()])
    return rows[:, :-1], rows[:, 1:]


@torch.no_grad()
def _evaluate(model: CharTransformer, ids: Tensor, length: int, device: str) -> float:
    """Mean next-character loss over consecutive windows of the validation text (at most 64)."""
    model.eval()
    length = min(length, len(ids) - 1)
    total, count = 0.0, 0
    for start in range(0, len(ids) - length, length)[:64]:
        window = ids[start : start + length + 1].to(device)
        logits = model(window[None, :-1])[0]
        total += float(F.cross_entropy(logits, window[1:], reduction="sum"))
        count += length
    return total / count
