"""Folders written by modelhub's own trainers: model.safetensors + config.json.

Their config.json names the trainer instead of a transformers architecture, so
they are told apart from Hugging Face folders and described by what they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection
from modelhub.errors import InvalidInput
from modelhub.inspect.huggingface_format import positive, read_json, typed
from modelhub.inspect.safetensors_format import inspect_safetensors

SUMMARY_KEYS = ("classes", "features", "label", "hidden", "context_length", "d_model",
                "n_layers", "n_heads", "embedding_dim", "tune")  # fmt: skip


def is_trained_folder(folder: Path) -> bool:
    config = folder / "config.json"
    return config.is_file() and "trainer" in read_json(config)


def inspect_trained(folder: Path) -> Inspection:
    config = read_json(folder / "config.json")
    trainer = typed(config, "trainer", str, "config.json")
    weights_file = folder / "model.safetensors"
    if not weights_file.is_file():
        raise InvalidInput(
            f"{folder.name} names trainer {trainer!r} but holds no model.safetensors",
            {"path": str(folder)},
        )
    weights = inspect_safetensors(weights_file)
    details: dict[str, Any] = {
        "format": "modelhub",
        "trainer": trainer,
        **{key: config[key] for key in SUMMARY_KEYS if key in config},
    }
    return weights.model_copy(
        update={
            "framework": Framework.SAFETENSORS,
            "architecture": trainer,
            "context_length": positive(config, "context_length", "config.json"),
            "details": details,
        }
    )
