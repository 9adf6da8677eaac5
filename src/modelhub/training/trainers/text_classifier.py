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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.hyperparameters import TextClassifierHyperparameters
from modelhub.domain.trainer_catalog import BUILTIN_TRAINERS
from modelhub.errors import InvalidInput
from modelhub.networks.text_classifier import MINILM as MINILM
from modelhub.networks.text_classifier import TextClassifier as TextClassifier
from modelhub.networks.text_classifier import apply_weights as apply_weights
from modelhub.networks.text_classifier import load as load
from modelhub.networks.text_classifier import load_encoder as load_encoder
from modelhub.networks.text_classifier import make_head as make_head
from modelhub.networks.text_classifier import minilm_path as minilm_path
from modelhub.training.context import LocalContext, TrainResult

if TYPE_CHECKING:
    import torch

# The trainer interface's declarations (docs/plugins.md): this trainer's row of the
# domain's table, which checks specs without importing this module.
_TRAITS = BUILTIN_TRAINERS.traits["text_classifier"]
pipeline_types = _TRAITS.pipeline_types
result_type = _TRAITS.result_type
hyperparameter_model = _TRAITS.hyperparameters
base_trainer = _TRAITS.base_trainer
data_parallel = _TRAITS.data_parallel


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


def train(ctx: LocalContext) -> TrainResult:
    """Fine-tune a text classifier; raises InvalidInput on a bad dataset or hyperparameter."""
    return fit(ctx)[0]


def fit(ctx: LocalContext) -> tuple[TrainResult, TextClassifier]:
    """`train`, also handing back the trained classifier in memory."""
    from modelhub.training.trainers import _text_classifier_loop as loop

    return loop.run(ctx)


def hyperparameters(ctx: LocalContext) -> dict[str, Any]:
    """The run's hyperparameters with defaults filled in; InvalidInput names a bad one."""
    hp: TextClassifierHyperparameters = TextClassifierHyperparameters.parse(ctx.hyperparameters)
    return {**hp.model_dump(), "learning_rate": hp.rate}


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
