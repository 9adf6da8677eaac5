"""The text classifier's network: a sentence-embedding encoder (MiniLM by default) and a head.

The output folder holds `config.json` and `model.safetensors` (head weights under
`head.`, fine-tuned encoder weights under `encoder.`); when the base encoder is not
the shipped MiniLM it is saved beside them in `encoder/`, so `load` works offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

MINILM = "minilm"


def minilm_path() -> Path:
    from modelhub.samples import minilm_folder

    return minilm_folder()


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
