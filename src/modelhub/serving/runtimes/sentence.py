"""Runtimes over a sentence-transformers encoder: `sentence_embeddings` for a plain
encoder folder, `text_classification` for modelhub's text classifier (an encoder and
a small head).

Loading is offline (`local_files_only`, no remote code), and a modules.json may only
name sentence-transformers' own module classes: sentence-transformers imports the
classes modules.json names, so any other name could run code from elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.serving.runtimes._common import (
    serving_device,
    text_array,
    text_column,
    torch_memory_bytes,
    unloaded,
)
from modelhub.serving.runtimes.base import RuntimeInfo

EMBEDDINGS = "sentence_embeddings"
CLASSIFICATION = "text_classification"
ENCODE_BATCH = 64
TRUSTED_MODULE_PREFIX = "sentence_transformers."


def check_modules(folder: Path) -> None:
    """Raise InvalidInput unless `folder/modules.json` lists only sentence-transformers modules."""
    path = folder / "modules.json"
    try:
        modules = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} cannot be read as JSON: {exc}", {"path": str(path)}) from exc
    if not isinstance(modules, list):
        raise InvalidInput(f"{path} must be a JSON list of modules", {"path": str(path)})
    for module in modules:
        kind = module.get("type") if isinstance(module, dict) else None
        if not isinstance(kind, str) or not kind.startswith(TRUSTED_MODULE_PREFIX):
            raise InvalidInput(
                f"{path} names module {kind!r}; only sentence_transformers modules are loaded"
                " (others would import code)",
                {"path": str(path)},
            )


def _encode(encoder: Any, texts: list[str]) -> np.ndarray:
    embeddings: np.ndarray = encoder.encode(
        texts, batch_size=ENCODE_BATCH, convert_to_numpy=True, show_progress_bar=False
    )
    return embeddings.astype(np.float32, copy=False)


class SentenceEmbeddingsRuntime:
    """One embedding vector per text."""

    def __init__(self, folder: Path) -> None:
        from modelhub.networks.text_classifier import load_encoder

        check_modules(folder)
        self._encoder: Any = load_encoder(folder, serving_device()).eval()
        for parameter in self._encoder.parameters():
            parameter.requires_grad_(False)
        self._dim = int(self._encoder.get_embedding_dimension() or 0)
        self.info = RuntimeInfo(
            runtime=EMBEDDINGS,
            signature=Signature(
                inputs=[TensorSpec(name="text", dtype="BYTES", shape=[-1])],
                outputs=[TensorSpec(name="embedding", dtype="FP32", shape=[-1, self._dim])],
            ),
            memory_bytes=torch_memory_bytes(self._encoder),
            blocking=True,
            details={
                "dimension": self._dim,
                "max_seq_length": int(self._encoder.max_seq_length or 0),
            },
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        encoder = self._encoder
        if encoder is None:
            raise unloaded(EMBEDDINGS)
        texts = text_column(inputs, "text")
        if not texts:
            return {"embedding": np.zeros((0, self._dim), dtype=np.float32)}
        return {"embedding": _encode(encoder, texts)}

    def unload(self) -> None:
        self._encoder = None


class TextClassificationRuntime:
    """Class probabilities and the most likely label per text."""

    def __init__(self, folder: Path) -> None:
        from modelhub.networks import text_classifier

        if (folder / "encoder").is_dir():
            check_modules(folder / "encoder")
        self._device = serving_device()
        model = text_classifier.load(folder, self._device)
        self._encoder: Any = model.encoder.eval()
        self._head: Any = model.head.eval()
        for parameter in [*self._encoder.parameters(), *self._head.parameters()]:
            parameter.requires_grad_(False)
        self._labels = text_array(list(model.classes))
        classes = len(self._labels)
        self.info = RuntimeInfo(
            runtime=CLASSIFICATION,
            signature=Signature(
                inputs=[TensorSpec(name="text", dtype="BYTES", shape=[-1])],
                outputs=[
                    TensorSpec(name="probabilities", dtype="FP32", shape=[-1, classes]),
                    TensorSpec(name="label", dtype="BYTES", shape=[-1]),
                ],
            ),
            memory_bytes=torch_memory_bytes(self._encoder) + torch_memory_bytes(self._head),
            blocking=True,
            details={"classes": self._labels.tolist()},
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        import torch

        encoder, head = self._encoder, self._head
        if encoder is None:
            raise unloaded(CLASSIFICATION)
        texts = text_column(inputs, "text")
        if not texts:
            empty = np.zeros((0, len(self._labels)), dtype=np.float32)
            return {"probabilities": empty, "label": text_array([])}
        embeddings = torch.from_numpy(_encode(encoder, texts)).to(self._device)
        with torch.inference_mode():
            probabilities = torch.softmax(head(embeddings), dim=-1).cpu().numpy()
        return {"probabilities": probabilities, "label": self._labels[probabilities.argmax(1)]}

    def unload(self) -> None:
        self._encoder = self._head = None
