"""A small character-level language model, trained from scratch or fine-tuned.

A decoder-only transformer (token and position embeddings, pre-LN blocks with
causal self-attention, an MLP, a final LayerNorm and an output head tied to the
token embedding) over the characters of a text corpus. The corpus is a plain
text file, or JSONL whose rows carry a "text" field. With `ctx.base_model` set,
training continues from a previous char_lm output and keeps its vocabulary:
characters it never saw map to the unknown token.

With `keep_best` set, the final state is checkpointed too, and the output is the
best checkpoint's model (see `_best`) with its validation loss measured again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.trainers._best import best_state, logged_at

UNKNOWN_ID = 0
UNKNOWN_CHAR = "\ufffd"


@dataclass(frozen=True)
class CharLMConfig:
    vocab: str
    context_length: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.0

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + 1

    def to_json(self) -> dict[str, Any]:
        return {"trainer": "char_lm", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CharLMConfig:
        return cls(
            vocab=str(data["vocab"]),
            context_length=int(data["context_length"]),
            d_model=int(data["d_model"]),
            n_layers=int(data["n_layers"]),
            n_heads=int(data["n_heads"]),
            dropout=float(data.get("dropout", 0.0)),
        )

    def encode(self, text: str) -> list[int]:
        index = {char: i + 1 for i, char in enumerate(self.vocab)}
        return [index.get(char, UNKNOWN_ID) for char in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i - 1] if i != UNKNOWN_ID else UNKNOWN_CHAR for i in ids)


class _Block(nn.Module):
    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.ln1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model),
            nn.GELU(),
            nn.Linear(4 * config.d_model, config.d_model),
            nn.Dropout(config.dropout),
        )
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=2)
        heads = (batch, length, self.n_heads, width // self.n_heads)
        q, k, v = (t.view(heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        attended = attended.transpose(1, 2).reshape(batch, length, width)
        x = x + self.resid_dropout(self.proj(attended))
        out: Tensor = x + self.mlp(self.ln2(x))
        return out


class CharTransformer(nn.Module):
    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.context_length, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(positions))
        for block in self.blocks:
            x = block(x)
        # The head is tied to the token embedding (kept as one tensor, so safetensors is happy).
        return self.ln_f(x) @ self.tok_emb.weight.T  # type: ignore[no-any-return]


class CharLM:
    """A trained model ready to predict: `generate` text, or read `logits`."""

    def __init__(self, model: CharTransformer, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = model.config
        self.device = device

    @torch.no_grad()
    def logits(self, text: str) -> Tensor:
        """Next-character logits after each of the last `context_length` characters of `text`."""
        ids = self.config.encode(text)[-self.config.context_length :] or [UNKNOWN_ID]
        out: Tensor = self.model(torch.tensor([ids], device=self.device))[0].cpu()
        return out

    @torch.no_grad()
    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 100,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> str:
        """The continuation of `prompt` (without the prompt); greedy when temperature is 0."""
        if temperature < 0:
            raise InvalidInput("temperature must be >= 0", {"field": "temperature"})
        generator = torch.Generator(device=self.device)
        if seed is not None:
            generator.manual_seed(seed)
        else:
            generator.seed()
        ids = self.config.encode(prompt) or [UNKNOWN_ID]
        new: list[int] = []
        for _ in range(max_new_tokens):
            window = (ids + new)[-self.config.context_length :]
            last = self.model(torch.tensor([window], device=self.device))[0, -1]
            if temperature == 0:
                chosen = int(last.argmax())
            else:
                last = last / temperature
                if top_k is not None:
                    kth = torch.topk(last, min(top_k, last.numel())).values[-1]
                    last = last.masked_fill(last < kth, -math.inf)
                probs = torch.softmax(last, dim=-1)
                chosen = int(torch.multinomial(probs, 1, generator=generator))
            new.append(chosen)
        return self.config.decode(new)


def load(folder: Path) -> CharLM:
    """Build a `CharLM` from a char_lm output folder (model.safetensors + config.json)."""
    config = CharLMConfig.from_json(json.loads((folder / "config.json").read_text()))
    model = CharTransformer(config)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return CharLM(model)


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


def _config_for(ctx: LocalContext, text: str) -> tuple[CharLMConfig, dict[str, Tensor] | None]:
    if ctx.base_model is not None:
        base = load(ctx.base_model)
        return base.config, base.model.state_dict()
    config = CharLMConfig(
        vocab="".join(sorted(set(text))),
        context_length=int(ctx.hp("context_length", 64)),
        d_model=int(ctx.hp("d_model", 64)),
        n_layers=int(ctx.hp("n_layers", 2)),
        n_heads=int(ctx.hp("n_heads", 4)),
        dropout=float(ctx.hp("dropout", 0.0)),
    )
    if config.d_model % config.n_heads:
        raise InvalidInput(
            f"d_model ({config.d_model}) must be a multiple of n_heads ({config.n_heads})",
            {"field": "d_model"},
        )
    return config, None


def _learning_rate(ctx: LocalContext, step: int, total: int) -> float:
    peak = float(ctx.hp("learning_rate", 3e-3))
    warmup = int(ctx.hp("warmup_steps", 0))
    if warmup and step <= warmup:
        return peak * step / warmup
    if ctx.hp("lr_schedule", "cosine") != "cosine":
        return peak
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(ctx: LocalContext) -> TrainResult:
    """Train on `ctx.dataset()` and write model.safetensors + config.json to `ctx.output_dir`.

    Raises InvalidInput for an empty or too-short corpus or bad hyperparameters, and
    TrainingDiverged when the loss stops being finite.
    """
    text = read_corpus(ctx.dataset())
    if not text:
        raise InvalidInput("the corpus is empty")
    resumed = ctx.latest_checkpoint()
    if resumed is not None:
        config = CharLMConfig.from_json(resumed[1]["config"])
        base_state = None
    else:
        config, base_state = _config_for(ctx, text)
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
        return _train_loop(ctx, config, train_ids, val_ids, base_state, resumed)


def _train_loop(
    ctx: LocalContext,
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
    batch_size = int(ctx.hp("batch_size", 32))
    steps_per_epoch = max(1, len(train_ids) // (batch_size * config.context_length))
    epochs = ctx.hp("epochs", None)
    total = int(epochs) * steps_per_epoch if epochs is not None else int(ctx.hp("steps", 300))
    log_every = int(ctx.hp("log_every", 10))
    eval_every = int(ctx.hp("eval_every", 50))
    checkpoint_every = int(ctx.hp("checkpoint_every", 100))
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=float(ctx.hp("learning_rate", 3e-3)),
        weight_decay=float(ctx.hp("weight_decay", 0.0)),
    )
    generator = torch.Generator().manual_seed(ctx.seed)
    step = 0
    if resumed is not None:
        step, state = resumed
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])

    def save_checkpoint() -> None:
        ctx.checkpoint(
            {
                "config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
            step,
        )

    metrics: dict[str, float] = {}
    window_start, window_steps = time.perf_counter(), 0
    stopped = False
    while step < total:
        if ctx.should_stop():
            stopped = True
            break
        step += 1
        lr = _learning_rate(ctx, step, total)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = _batch(train_ids, batch_size, config.context_length, generator)
        model.train()
        logits = model(inputs.to(ctx.device))
        loss = F.cross_entropy(logits.flatten(0, 1), targets.to(ctx.device).flatten())
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the loss became {value} at step {step}", {"step": step, "loss": str(value)}
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(model.parameters(), float(ctx.hp("grad_clip", 1.0)))
        optimizer.step()
        window_steps += 1
        metrics["loss"] = value
        if step == 1 or step % log_every == 0 or step == total:
            elapsed = max(time.perf_counter() - window_start, 1e-9)
            ctx.log("loss", value, step)
            ctx.log("learning_rate", lr, step)
            ctx.log("samples_per_s", window_steps * batch_size / elapsed, step)
            window_start, window_steps = time.perf_counter(), 0
        if len(val_ids) >= 2 and (step % eval_every == 0 or step == total):
            metrics["val_loss"] = _evaluate(model, val_ids, config.context_length, ctx.device)
            ctx.log("val_loss", metrics["val_loss"], step)
        ctx.progress(step, total, epoch=step // steps_per_epoch)
        if step % checkpoint_every == 0:
            save_checkpoint()
    trained = step > (resumed[0] if resumed is not None else 0)
    if trained and step % checkpoint_every != 0 and (stopped or ctx.keep_best is not None):
        save_checkpoint()  # with keep_best, the final state competes for best too
    best = best_state(ctx, step)
    if best is not None:
        best_step, best_model = best
        if best_model is not None:
            model.load_state_dict(best_model["model"])
            metrics = logged_at(ctx, best_step, ("loss",))
            if len(val_ids) >= 2:
                metrics["val_loss"] = _evaluate(model, val_ids, config.context_length, ctx.device)
        metrics["best_step"] = float(best_step)
    metrics["steps"] = float(step)
    if stopped:
        metrics["stopped"] = 1.0
    if "val_loss" in metrics:
        metrics["val_perplexity"] = math.exp(metrics["val_loss"])
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


def write_output(folder: Path, model: CharTransformer, config: CharLMConfig) -> None:
    """Write the folder a run registers, as `tabular.write_output` does."""
    state = {
        name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()
    }
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config.to_json(), indent=2))
