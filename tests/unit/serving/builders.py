"""Real, tiny model folders written the way modelhub's trainers write them, and a guard
that fails any attempt to unpickle while runtimes load."""

from __future__ import annotations

import contextlib
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

FEATURES = ["height", "width", "depth", "weight"]
CLASSES: list[str | int] = ["cat", "dog", 7]
HIDDEN = [8]
MEAN = [10.0, -3.0, 0.5, 100.0]
STD = [2.0, 0.5, 1.0, 25.0]


class UnpicklingAttempted(AssertionError):
    pass


@contextlib.contextmanager
def no_unpickling() -> Iterator[None]:
    """Inside, torch.load and every pickle entry point raise."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise UnpicklingAttempted("something tried to unpickle while loading a runtime")

    class RefusingUnpickler(pickle.Unpickler):  # still a class others may subclass
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            refuse()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "load", refuse)
        patch.setattr(torch.serialization, "load", refuse)
        patch.setattr(pickle, "load", refuse)
        patch.setattr(pickle, "loads", refuse)
        patch.setattr(pickle, "Unpickler", RefusingUnpickler)
        yield


def write_tabular(folder: Path, seed: int = 0) -> Path:
    """A tabular_classifier output folder, as the tabular trainer writes it."""
    from modelhub.networks import tabular

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = tabular.build_model(len(FEATURES), HIDDEN, len(CLASSES))
    tabular.write_output(
        folder, model, FEATURES, "kind", list(CLASSES), HIDDEN, np.array(MEAN), np.array(STD)
    )
    return folder


def write_char_lm(folder: Path, seed: int = 0) -> Path:
    """A char_lm output folder, as the char_lm trainer writes it."""
    from modelhub.networks import char_lm

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = char_lm.CharLMConfig(
        vocab="abcdefgh ", context_length=16, d_model=16, n_layers=1, n_heads=2
    )
    char_lm.write_output(folder, char_lm.CharTransformer(config), config)
    return folder


def write_text_classifier(folder: Path, prototypes: np.ndarray, classes: list[str]) -> Path:
    """A head-only text classifier over the shipped MiniLM: one linear head whose rows
    are the classes' prototype embeddings (a nearest-prototype classifier)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weight = (prototypes * 10.0).astype(np.float32)
    save_file(
        {"head.0.weight": weight, "head.0.bias": np.zeros(len(classes), np.float32)},
        str(folder / "model.safetensors"),
        metadata={"trainer": "text_classifier"},
    )
    config = {
        "trainer": "text_classifier",
        "classes": classes,
        "embedding_dim": int(prototypes.shape[1]),
        "tune": "head",
        "base": "minilm",
        "head": {"type": "linear", "hidden": 0},
        "text_field": "text",
        "label_field": "label",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def texts(*values: str) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array
