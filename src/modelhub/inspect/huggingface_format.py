"""Inspect a Hugging Face model folder: config.json plus its weight files.

Sentence-transformers folders (modules.json) also get an embedding signature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework, Precision
from modelhub.domain.records import Inspection, Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.inspect.bounded_json import JsonRefused, loads_bounded
from modelhub.inspect.files import inspect_file
from modelhub.inspect.folder import combine
from modelhub.inspect.paths import inside
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
MAX_JSON_BYTES = 64 * 2**20  # the largest shard indexes are a few MiB
MAX_DIMENSION = 2**31 - 1  # context lengths and widths; also what the registry can store
_JSON_TYPE_NAMES: dict[type, str] = {
    dict: "an object", list: "a list", str: "a string", int: "an integer",
}  # fmt: skip


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return _JSON_TYPE_NAMES.get(type(value), "a number")


def load_json(path: Path) -> Any:
    """JSON from a model's own file, parsed within bounds; InvalidInput otherwise."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise InvalidInput(
            f"{path.name} is larger than {MAX_JSON_BYTES // 2**20} MiB", {"path": str(path)}
        )
    try:
        return loads_bounded(path.read_bytes())
    except JsonRefused as exc:
        raise InvalidInput(f"{path.name} {exc}", {"path": str(path)}) from exc


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a model's own file (config.json and the like)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name} is not a JSON object", {"path": str(path)})
    return data


def typed(config: dict[str, Any], key: str, kind: type, source: str) -> Any:
    """`config[key]` when it has the JSON type the format gives it; None when absent or null."""
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(
            f"{source}: {key} must be {_JSON_TYPE_NAMES[kind]}, not {_json_type(value)}",
            {"field": key},
        )
    return value


def positive(config: dict[str, Any], key: str, source: str) -> int | None:
    """A size or length (`max_position_embeddings`, `out_features` ...): 1 to 2^31 - 1."""
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        return None  # absent, or a shape this reader does not use (a list, a string)
    if not 1 <= value <= MAX_DIMENSION:
        raise InvalidInput(
            f"{source}: {key} must be between 1 and {MAX_DIMENSION}, not {value}", {"field": key}
        )
    return value


def _first(config: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    text_config = typed(config, "text_config", dict, "config.json") or {}
    for source, where in ((config, "config.json"), (text_config, "config.json text_config")):
        for key in keys:
            value = positive(source, key, where)
            if value is not None:
                return value
    return None


def inspect_huggingface(folder: Path) -> Inspection:
    """Describe a transformers-style folder from config.json and weight headers."""
    config = read_json(folder / "config.json")
    weights = _weights(folder)
    architectures = typed(config, "architectures", list, "config.json") or []
    if not all(isinstance(a, str) for a in architectures):
        raise InvalidInput(
            "config.json: architectures must be a list of strings", {"field": "architectures"}
        )
    model_type = typed(config, "model_type", str, "config.json")
    torch_dtype = typed(config, "torch_dtype", str, "config.json") or typed(
        config, "dtype", str, "config.json"
    )
    precision = weights.precision
    if precision is Precision.UNKNOWN and torch_dtype:
        precision = PRECISION_BY_DTYPE.get(torch_dtype, Precision.UNKNOWN)
    details: dict[str, Any] = {
        "format": "huggingface",
        "architectures": architectures,
        "model_type": model_type,
        "hidden_size": _first(config, _HIDDEN_KEYS),
        "num_layers": _first(config, _LAYER_KEYS),
        "vocab_size": _first(config, ("vocab_size",)),
        "torch_dtype": torch_dtype,
        "weights": weights.details,
    }
    signature = Signature()
    if (folder / "modules.json").is_file():
        st_details, signature = _sentence_transformers(folder)
        details.update(st_details)
    architecture = architectures[0] if architectures else model_type or weights.architecture
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
    weight_map = typed(read_json(index_path), "weight_map", dict, _INDEX) or {}
    shards = {inside(folder, f, f"{_INDEX}: weight_map") for f in set(weight_map.values())}
    missing = sorted(str(s.relative_to(folder)) for s in shards if not s.is_file())
    if missing:
        raise InvalidInput(
            f"{_INDEX} in {folder.name} names missing shards: {', '.join(missing)}",
            {"path": str(folder), "missing": missing},
        )


def _sentence_transformers(folder: Path) -> tuple[dict[str, Any], Signature]:
    modules_path = folder / "modules.json"
    modules = load_json(modules_path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise InvalidInput("modules.json must be a list of objects", {"path": str(modules_path)})
    dim: int | None = None
    for module in modules:
        kind = typed(module, "type", str, "modules.json") or ""
        relative = typed(module, "path", str, "modules.json")
        if not relative:
            continue  # the transformer itself lives at the root
        config_path = inside(folder, relative, "modules.json: path") / "config.json"
        if not config_path.is_file():
            continue
        config = read_json(config_path)
        where = f"{relative}/config.json"
        if kind.endswith("Pooling"):
            dim = positive(config, "word_embedding_dimension", where) or dim
        elif kind.endswith("Dense"):
            dim = positive(config, "out_features", where) or dim
    details: dict[str, Any] = {"sentence_transformers": True, "embedding_dim": dim}
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        details["max_seq_length"] = positive(
            read_json(st_config), "max_seq_length", "sentence_bert_config.json"
        )
    signature = Signature(
        inputs=[TensorSpec(name="text", dtype="string", shape=[-1])],
        outputs=[TensorSpec(name="embedding", dtype="float32", shape=[-1, dim or -1])],
    )
    return details, signature
