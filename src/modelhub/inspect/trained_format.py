"""Folders written by modelhub's own trainers: model.safetensors + config.json.

Their config.json names the trainer instead of a transformers architecture, so
they are told apart from Hugging Face folders and described by what they are. An
ONNX export of one (config.json `"format": "onnx"`, the graph named by `onnx_file`)
is described from its graph: framework onnx, the trainer as architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection, Signature
from modelhub.errors import InvalidInput
from modelhub.inspect.huggingface_format import positive, read_json, typed
from modelhub.inspect.onnx_format import inspect_onnx
from modelhub.inspect.paths import inside
from modelhub.inspect.safetensors_format import inspect_safetensors

SUMMARY_KEYS = ("classes", "features", "label", "hidden", "context_length", "d_model",
                "n_layers", "n_heads", "embedding_dim", "tune")  # fmt: skip


def is_trained_folder(folder: Path) -> bool:
    config = folder / "config.json"
    return config.is_file() and "trainer" in read_json(config)


def inspect_trained(folder: Path) -> Inspection:
    config = read_json(folder / "config.json")
    trainer = typed(config, "trainer", str, "config.json")
    if "format" in config:
        return _inspect_export(folder, config, trainer)
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
            "signature": Signature(),
            "details": details,
        }
    )


def _inspect_export(folder: Path, config: dict[str, Any], trainer: str) -> Inspection:
    form = typed(config, "format", str, "config.json")
    if form != "onnx":
        raise InvalidInput(
            f"{folder.name}/config.json says format {form!r}; a trainer's output is either its"
            ' own (no "format") or an ONNX export ("format": "onnx")',
            {"path": str(folder), "format": form},
        )
    graph = inside(folder, config.get("onnx_file"), "config.json: onnx_file")
    if graph.parent != folder or graph.suffix != ".onnx" or not graph.is_file():
        raise InvalidInput(
            f"{folder.name} is an ONNX export of a {trainer} model but lacks its graph"
            f" {config.get('onnx_file')!r} (a .onnx file beside config.json)",
            {"path": str(folder)},
        )
    inspection = inspect_onnx(graph)
    details: dict[str, Any] = {
        **inspection.details,
        "format": "onnx",
        "trainer": trainer,
        "onnx_file": graph.relative_to(folder).as_posix(),
        # what the graph takes and gives; the served signature is the trainer's, as for
        # the source (text in, for the text classifier, not token ids)
        "graph_signature": inspection.signature.model_dump(mode="json"),
        **{key: config[key] for key in SUMMARY_KEYS if key in config},
    }
    if "quantization" in config:
        details["quantization"] = config["quantization"]
    return inspection.model_copy(
        update={
            "architecture": trainer,
            "context_length": positive(config, "context_length", "config.json"),
            "signature": Signature(),
            "details": details,
        }
    )
