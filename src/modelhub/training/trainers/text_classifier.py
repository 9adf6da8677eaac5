"""Text classifier: a small head on top of a sentence-embedding encoder (MiniLM by default).

`tune="head"` freezes the encoder, embeds every text once and trains the head on the
cached embeddings (seconds on a CPU). `tune="last_layers"` unfreezes the last
`unfreeze_layers` transformer layers and trains end to end on small batches.

`ctx.base_model` may be another sentence-transformers folder (the encoder) or an
earlier text classifier's output, which a fine-tuning run continues (see
`_text_classifier_loop.Start`).

The output folder holds `config.json` and `model.safetensors` (head weights under
`head.`, fine-tuned encoder weights under `encoder.`). When the base is not the
shipped MiniLM, the base encoder is saved beside them in `encoder/` so `load`
works offline from the folder alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.errors import InvalidInput
from modelhub.training.context import LocalContext, TrainResult

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

TUNES = ("head", "last_layers")
MINILM = "minilm"


@dataclass
class Example:
    text: str
    label: str


def read_examples(path: Path, text_field: str, label_field: str) -> list[Example]:
    """Rows of a JSONL file; a bad line raises InvalidInput naming its number."""
    examples: list[Example] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"line {number} of the dataset is not JSON: {exc.msg}", {"line": number}
                ) from exc
            if not isinstance(row, dict):
                raise InvalidInput(f"line {number} is not a JSON object", {"line": number})
            for name in (text_field, label_field):
                if name not in row or row[name] is None:
                    raise InvalidInput(
                        f"line {number} has no {name!r} field",
                        {"line": number, "field": name},
                    )
            examples.append(Example(str(row[text_field]), str(row[label_field])))
    if not examples:
        raise InvalidInput("the dataset is empty", {"dataset": str(path)})
    if len({e.label for e in examples}) < 2:
        raise InvalidInput(
            "a classifier needs at least 2 classes, the dataset has 1",
            {"field": label_field},
        )
    return examples


def split_indices(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (train, validation) indices: each class with 2+ rows gives some to validation."""
    import random

    rng = random.Random(seed)
    train: list[int] = []
    val: list[int] = []
    for cls in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == cls]
        rng.shuffle(members)
        take = round(len(members) * fraction) if len(members) > 1 else 0
        if fraction > 0 and len(members) > 1:
            take = max(1, min(take, len(members) - 1))
        val.extend(members[:take])
        train.extend(members[take:])
    return sorted(train), sorted(val)


def minilm_path() -> Path:
    from modelhub.samples import minilm_folder

    return minilm_folder()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def base_identity(folder: Path) -> str:
    """'minilm' for the shipped model (or a copy of it), else the digest of its weights."""
    weights = folder / "model.safetensors"
    if folder.resolve() == minilm_path().resolve():
        return MINILM
    if weights.exists():
        identity = file_digest(weights)
        return MINILM if identity == file_digest(minilm_path() / "model.safetensors") else identity
    return folder.name


def load_encoder(folder: Path, device: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    if not (folder / "modules.json").exists():
        raise InvalidInput(
            f"base model {folder} is not a sentence-transformers folder (no modules.json)",
            {"field": "base_model"},
        )
    return SentenceTransformer(str(folder), device=device, local_files_only=True)


def make_head(dim: int, classes: int, hidden: int) -> torch.nn.Sequential:
    from torch import nn

    if hidden > 0:
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))
    return nn.Sequential(nn.Linear(dim, classes))


class TextClassifier:
    """An encoder and a head; `predict` gives class names, `predict_proba` their probabilities."""

    def __init__(
        self, encoder: SentenceTransformer, head: torch.nn.Module, classes: list[str]
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.classes = classes

    def embed(self, texts: list[str]) -> torch.Tensor:
        embeddings = self.encoder.encode(
            texts, convert_to_tensor=True, show_progress_bar=False, batch_size=64
        )
        return embeddings.detach().float()

    def predict_proba(self, texts: list[str]) -> list[list[float]]:
        import torch

        self.encoder.eval()
        self.head.eval()
        with torch.no_grad():
            logits = self.head(self.embed(texts))
            probabilities: list[list[float]] = torch.softmax(logits, dim=-1).cpu().tolist()
        return probabilities

    def predict(self, texts: list[str]) -> list[str]:
        return [
            self.classes[max(range(len(row)), key=row.__getitem__)]
            for row in self.predict_proba(texts)
        ]


def train(ctx: LocalContext) -> TrainResult:
    """Fine-tune a text classifier; raises InvalidInput on a bad dataset or hyperparameter."""
    return fit(ctx)[0]


def fit(ctx: LocalContext) -> tuple[TrainResult, TextClassifier]:
    """`train`, also handing back the trained classifier in memory."""
    from modelhub.training.trainers import _text_classifier_loop as loop

    return loop.run(ctx)


def load(folder: Path, device: str = "cpu") -> TextClassifier:
    """Rebuild a trained classifier from its output folder, offline."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    if config.get("trainer") != "text_classifier":
        raise InvalidInput(f"{folder} does not hold a text_classifier model", {"path": str(folder)})
    encoder_folder = folder / "encoder"
    if not encoder_folder.exists():
        if config.get("base") != MINILM:
            raise InvalidInput(
                f"{folder} needs its base encoder {config.get('base')}, which is not saved there",
                {"path": str(folder)},
            )
        encoder_folder = minilm_path()
    encoder = load_encoder(encoder_folder, device)
    weights = load_file(str(folder / "model.safetensors"), device=device)
    head_state: dict[str, Any] = {}
    apply_weights(encoder, head_state, weights)
    head_config: dict[str, Any] = config["head"]
    head = make_head(int(config["embedding_dim"]), len(config["classes"]), head_config["hidden"])
    head.load_state_dict(head_state)
    head.to(device)
    return TextClassifier(encoder, head, list(config["classes"]))


def apply_weights(
    encoder: SentenceTransformer, head_state: dict[str, Any], weights: dict[str, Any]
) -> None:
    """Split saved weights: `head.*` into head_state, `encoder.*` copied into the encoder."""
    import torch

    params = dict(encoder.named_parameters())
    for name, tensor in weights.items():
        if name.startswith("head."):
            head_state[name.removeprefix("head.")] = tensor
        elif name.startswith("encoder."):
            key = name.removeprefix("encoder.")
            if key not in params:
                raise InvalidInput(f"saved encoder weight {key} does not fit the base encoder")
            with torch.no_grad():
                params[key].copy_(tensor)


def hyperparameters(ctx: LocalContext) -> dict[str, Any]:
    tune = ctx.hp("tune", "head")
    if tune not in TUNES:
        raise InvalidInput(
            f"tune must be one of {', '.join(TUNES)}, not {tune!r}", {"field": "tune"}
        )
    head_mode = tune == "head"
    values = {
        "tune": tune,
        "epochs": int(ctx.hp("epochs", 20 if head_mode else 3)),
        "batch_size": int(ctx.hp("batch_size", 16)),
        "learning_rate": float(ctx.hp("learning_rate", 1e-3 if head_mode else 2e-5)),
        "unfreeze_layers": int(ctx.hp("unfreeze_layers", 1)),
        "hidden": int(ctx.hp("hidden", 0)),
        "text_field": str(ctx.hp("text_field", "text")),
        "label_field": str(ctx.hp("label_field", "label")),
    }
    for name in ("epochs", "batch_size"):
        if values[name] < 1:
            raise InvalidInput(f"{name} must be at least 1", {"field": name})
    if values["learning_rate"] <= 0:
        raise InvalidInput("learning_rate must be positive", {"field": "learning_rate"})
    return values


def write_output(
    ctx: LocalContext,
    model: TextClassifier,
    hp: dict[str, Any],
    base: str,
    base_folder: Path,
    tuned: dict[str, torch.Tensor],
) -> None:
    import shutil

    from safetensors.torch import save_file

    tensors = {
        f"head.{k}": v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()
    }
    tensors.update({f"encoder.{k}": v.detach().cpu().contiguous() for k, v in tuned.items()})
    save_file(
        tensors, str(ctx.output_dir / "model.safetensors"), metadata={"trainer": "text_classifier"}
    )
    if base != MINILM and not (ctx.output_dir / "encoder").exists():
        shutil.copytree(base_folder, ctx.output_dir / "encoder")
    config = {
        "trainer": "text_classifier",
        "classes": model.classes,
        "embedding_dim": model.encoder.get_embedding_dimension(),
        "tune": hp["tune"],
        "base": base,
        "head": {"type": "mlp" if hp["hidden"] > 0 else "linear", "hidden": hp["hidden"]},
        "text_field": hp["text_field"],
        "label_field": hp["label_field"],
    }
    if hp["tune"] == "last_layers":
        config["unfreeze_layers"] = hp["unfreeze_layers"]
    (ctx.output_dir / "config.json").write_text(json.dumps(config, indent=2))


def throughput(samples: int, started: float) -> float:
    return samples / max(time.perf_counter() - started, 1e-9)
