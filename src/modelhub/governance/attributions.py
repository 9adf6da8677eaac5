"""Integrated Gradients (Captum) for the PyTorch classifiers trained here.

- Tabular classifier: the MLP is rebuilt from the version's files (`networks.tabular`),
  with its input normalisation in front, so attributions are per raw feature value.
  Each row is explained towards its predicted class, from a baseline that is the
  data's column means (default) or all zeros.
- Text classifier: `LayerIntegratedGradients` over the encoder's token embeddings,
  from a baseline where every word piece is replaced by the padding token (the
  [CLS]/[SEP] markers stay); word pieces are summed back into the words they spell.

Captum's convergence delta is the completeness error `sum(attributions) - (F(x) - F(b))`;
it is reported relative to the output difference `|F(x) - F(b)|`, so a bar such as
0.05 means the attributions account for the prediction's change within 5%.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.errors import InvalidInput

BASELINES = ("mean", "zeros")
IG_STEPS = 64
TEXT_IG_STEPS = 16
TEXT_BATCH = 16
MAX_TOKENS = 128  # longer texts are truncated for the explanation, as the encoder would
TINY = 1e-9


@dataclass(frozen=True)
class FeatureAttributions:
    """Per-row attributions of a tabular classifier towards each row's predicted class."""

    features: list[str]
    values: np.ndarray  # float [rows, features]
    predicted: list[str]
    relative_deltas: np.ndarray  # float [rows]
    baseline: str


@dataclass(frozen=True)
class TextAttributions:
    """Per-text word attributions towards each text's predicted class."""

    words: list[list[tuple[str, float]]]  # per text, its words in order with their score
    predicted: list[str]
    relative_deltas: np.ndarray  # float [texts]


def trainer_of(folder: Path) -> str | None:
    """Which built-in trainer wrote the version's folder (its config.json), if any; None
    for an ONNX export of one, whose network is a graph gradients cannot be taken from."""
    config = folder / "config.json"
    if not folder.is_dir() or not config.is_file():
        return None
    try:
        data = json.loads(config.read_text())
        trainer, form = data.get("trainer"), data.get("format")
    except (ValueError, AttributeError):
        return None
    return str(trainer) if trainer and form is None else None


def relative(deltas: Any, differences: Any) -> np.ndarray:
    d = np.abs(np.asarray(deltas, dtype=np.float64))
    diff = np.abs(np.asarray(differences, dtype=np.float64))
    out: np.ndarray = d / np.maximum(diff, TINY)
    return out


def tabular_attributions(
    folder: Path,
    matrix: np.ndarray,
    baseline: str = "mean",
    steps: int = IG_STEPS,
    reference: np.ndarray | None = None,
) -> FeatureAttributions:
    """Integrated Gradients of every row (raw feature values, in the config's order).
    The `mean` baseline is the column means of `reference` (default: `matrix` itself),
    so one row can be explained against the sample it came from."""
    import torch
    from captum.attr import IntegratedGradients

    from modelhub.networks import tabular

    if baseline not in BASELINES:
        raise InvalidInput(
            f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}",
            {"field": "baseline"},
        )
    predictor = tabular.load(folder)
    mean = torch.tensor(predictor.config["mean"], dtype=torch.float32)
    std = torch.tensor(predictor.config["std"], dtype=torch.float32)
    network = predictor.model

    def forward(x: Any) -> Any:
        return network((x - mean) / std)

    x = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
    if baseline == "mean":
        source = matrix if reference is None else reference
        base = torch.from_numpy(np.asarray(source, dtype=np.float64).mean(axis=0)).float()[None]
    else:
        base = torch.zeros(1, x.shape[1])
    base = base.expand_as(x).contiguous()
    with torch.no_grad():
        logits = forward(x)
        targets = logits.argmax(dim=1)
        picked = logits.gather(1, targets[:, None])[:, 0]
        at_base = forward(base).gather(1, targets[:, None])[:, 0]
    ig = IntegratedGradients(forward)
    attributions, deltas = ig.attribute(
        x,
        baselines=base,
        target=targets,
        n_steps=steps,
        internal_batch_size=max(1, min(len(x), 4096)) * steps,
        return_convergence_delta=True,
    )
    classes = [str(c) for c in predictor.classes]
    return FeatureAttributions(
        features=list(predictor.features),
        values=attributions.detach().numpy().astype(np.float64),
        predicted=[classes[int(i)] for i in targets],
        relative_deltas=relative(deltas.detach().numpy(), (picked - at_base).numpy()),
        baseline=baseline,
    )


class _TextForward:
    """(token ids, attention mask, token types) -> the classifier's logits."""

    def __init__(self, model: Any) -> None:
        self.encoder = model.encoder
        self.head = model.head

    def __call__(self, input_ids: Any, mask: Any, token_types: Any) -> Any:
        features = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_types}
        return self.head(self.encoder(features)["sentence_embedding"])


def text_attributions(
    folder: Path, texts: list[str], steps: int = TEXT_IG_STEPS, batch: int = TEXT_BATCH
) -> TextAttributions:
    """LayerIntegratedGradients over the token embeddings, `batch` texts per call."""
    from captum.attr import LayerIntegratedGradients

    from modelhub.networks import text_classifier

    model = text_classifier.load(folder, "cpu")
    model.encoder.eval()
    model.head.eval()
    transformer: Any = model.encoder[0]
    embeddings = transformer.auto_model.embeddings.word_embeddings
    forward = _TextForward(model)
    lig = LayerIntegratedGradients(forward, embeddings)
    words: list[list[tuple[str, float]]] = []
    predicted: list[str] = []
    deltas: list[np.ndarray] = []
    for start in range(0, len(texts), batch):
        found = _explain_texts(model, forward, lig, texts[start : start + batch], steps)
        words += found.words
        predicted += found.predicted
        deltas.append(found.relative_deltas)
    joined = np.concatenate(deltas) if deltas else np.zeros(0)
    return TextAttributions(words, predicted, joined)


def _explain_texts(
    model: Any, forward: _TextForward, lig: Any, texts: list[str], steps: int
) -> TextAttributions:
    import torch

    tokenizer = model.encoder.tokenizer
    encoded = tokenizer(
        texts, return_tensors="pt", truncation=True, max_length=MAX_TOKENS, padding=True
    )
    ids = encoded["input_ids"]
    extra = (encoded["attention_mask"], encoded.get("token_type_ids", torch.zeros_like(ids)))
    special = torch.isin(ids, torch.tensor(sorted(set(tokenizer.all_special_ids))))
    base = ids.masked_fill(~special, int(tokenizer.pad_token_id or 0))
    with torch.no_grad():
        logits = forward(ids, *extra)
        targets = logits.argmax(dim=1)
        differences = logits.gather(1, targets[:, None])[:, 0]
        differences = differences - forward(base, *extra).gather(1, targets[:, None])[:, 0]
    attributions, delta = lig.attribute(
        ids,
        baselines=base,
        target=targets,
        additional_forward_args=extra,
        n_steps=steps,
        internal_batch_size=len(texts) * steps,
        return_convergence_delta=True,
    )
    per_token = attributions.sum(dim=-1).detach().numpy()
    words = []
    for row in range(len(texts)):
        tokens = tokenizer.convert_ids_to_tokens(ids[row].tolist())
        words.append(merge_word_pieces(tokens, per_token[row], special[row].numpy()))
    return TextAttributions(
        words,
        [str(model.classes[int(t)]) for t in targets],
        relative(delta.detach().numpy(), differences.numpy()),
    )


def merge_word_pieces(
    tokens: list[str], scores: np.ndarray, special: np.ndarray
) -> list[tuple[str, float]]:
    """WordPiece tokens ("un", "##believ", "##able") back into words, scores summed."""
    merged: list[tuple[str, float]] = []
    for token, score, is_special in zip(tokens, scores, special, strict=True):
        if is_special:
            continue
        if token.startswith("##") and merged:
            word, total = merged[-1]
            merged[-1] = (word + token[2:], total + float(score))
        else:
            merged.append((token, float(score)))
    return merged
