"""Inspect a Hugging Face model folder: config.json plus its weight files.

Sentence-transformers folders (modules.json) also get an embedding signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework, Precision
from modelhub.domain.records import Inspection, Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.inspect.files import inspect_file
from modelhub.inspect.folder import combine
from modelhub.inspect.safetensors_format import read_header
from modelhub.inspect.tensors import PRECISION_BY_DTYPE, TensorSummary

_CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "max_sequence_length",
    "seq_length",
    "n_ctx",
)
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_INDEX = "model.safetensors.index.json"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not valid JSON: {exc}", {"path": str(path)}) from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name} is not a JSON object", {"path": str(path)})
    return data


def _first(config: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for source in (config, config.get("text_config") or {}):
        for key in keys:
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def inspect_huggingface(folder: Path) -> Inspection:
    """Describe a transformers-style folder from config.json and weight headers."""
    config = read_json(folder / "config.json")
    weights = _weights(folder)
    architectures = config.get("architectures") or []
    torch_dtype = config.get("torch_dtype") or config.get("dtype")
    precision = weights.precision
    if precision is Precision.UNKNOWN and isinstance(torch_dtype, str):
        precision = PRECISION_BY_DTYPE.get(torch_dtype, Precision.UNKNOWN)
    details: dict[str, Any] = {
        "format": "huggingface",
        "architectures": [str(a) for a in architectures],
        "model_type": config.get("model_type"),
        "hidden_size": _first(config, _HIDDEN_KEYS),
        "num_layers": _first(config, _LAYER_KEYS),
        "vocab_size": _first(config, ("vocab_size",)),
        "torch_dtype": torch_dtype if isinstance(torch_dtype, str) else None,
        "weights": weights.details,
    }
    signature = Signature()
    if (folder / "modules.json").is_file():
        st_details, signature = _sentence_transformers(folder)
        details.update(st_details)
    architecture = (
        str(architectures[0]) if architectures else config.get("model_type") or weights.architecture
    )
    return Inspection(
        framework=Framework.HUGGINGFACE,
        architecture=architecture,
        parameters=weights.parameters,
        precision=precision,
        dtypes=weights.dtypes,
        tensor_count=weights.tensor_count,
        context_length=_first(config, _CONTEXT_KEYS),
        signature=signature,
        details=details,
        requires_trust=weights.requires_trust,
        pickle_findings=weights.pickle_findings,
    )


def _weights(folder: Path) -> Inspection:
    """The folder's weights as one Inspection: safetensors first, else torch .bin files."""
    _check_index(folder)
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        summary = TensorSummary()
        for shard in shards:
            summary.merge(read_header(shard).tensors)
        precision, precision_details = summary.precision()
        return Inspection(
            framework=Framework.SAFETENSORS,
            architecture=summary.architecture(),
            parameters=summary.parameters,
            precision=precision,
            dtypes=dict(summary.params_by_dtype),
            tensor_count=summary.tensor_count,
            details={"files": [s.name for s in shards], **precision_details},
        )
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if bins:
        combined = combine(folder, [(b, inspect_file(b)) for b in bins])
        details = {"files": [b.name for b in bins]}
        return combined.model_copy(update={"details": details})
    raise InvalidInput(
        f"{folder.name} has config.json but no *.safetensors or pytorch_model*.bin weights",
        {"path": str(folder)},
    )


def _check_index(folder: Path) -> None:
    index_path = folder / _INDEX
    if not index_path.is_file():
        return
    weight_map = read_json(index_path).get("weight_map") or {}
    missing = sorted({str(f) for f in weight_map.values() if not (folder / str(f)).is_file()})
    if missing:
        raise InvalidInput(
            f"{_INDEX} in {folder.name} names missing shards: {', '.join(missing)}",
            {"path": str(folder), "missing": missing},
        )


def _sentence_transformers(folder: Path) -> tuple[dict[str, Any], Signature]:
    modules_path = folder / "modules.json"
    try:
        modules = json.loads(modules_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"modules.json is not valid JSON: {exc}", {"path": str(modules_path)}
        ) from exc
    dim: int | None = None
    for module in modules if isinstance(modules, list) else []:
        if not isinstance(module, dict):
            continue
        kind = str(module.get("type", ""))
        config_path = folder / str(module.get("path", "")) / "config.json"
        if not config_path.is_file() or not module.get("path"):
            continue
        config = read_json(config_path)
        if kind.endswith("Pooling"):
            dim = config.get("word_embedding_dimension", dim)
        elif kind.endswith("Dense"):
            dim = config.get("out_features", dim)
    details: dict[str, Any] = {"sentence_transformers": True, "embedding_dim": dim}
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        details["max_seq_length"] = read_json(st_config).get("max_seq_length")
    signature = Signature(
        inputs=[TensorSpec(name="text", dtype="string", shape=[-1])],
        outputs=[TensorSpec(name="embedding", dtype="float32", shape=[-1, dim or -1])],
    )
    return details, signature
