"""Read an MLflow model directory (the folder `mlflow.<flavor>.save_model` writes).

Its `MLmodel` file (YAML) names the flavors the model was saved with and where each
keeps its files. Supported: `onnx` (the graph, served by modelhub's ONNX runtime),
`transformers` (a Hugging Face folder inside, laid out flat as one), `pytorch` (a
pickled module: scanned, registered only with trust) and `python_function` alone
(a pickled Python model: the same). Any path MLmodel names must stay inside the
folder, and no file of the folder may be a symbolic link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.inspect.bounded_json import JsonRefused, loads_bounded
from modelhub.inspect.paths import inside
from modelhub.interop.bounded_yaml import MAX_YAML_BYTES, YamlRefused, load_yaml_bounded
from modelhub.interop.plan import (
    ImportPlan,
    no_links_out,
    plain_text,
    read_text,
    requirement_lines,
)

MLMODEL = "MLmodel"
# Flavors in the order one is chosen when a model was saved with several.
SUPPORTED_FLAVORS = ("onnx", "transformers", "pytorch", "python_function")
# Files MLflow writes beside any model: read for their metadata, not part of the weights.
METADATA_FILES = frozenset(
    {
        MLMODEL,
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
        "input_example.json",
        "serving_input_example.json",
        "registered_model_meta",
        "README.md",
    }
)
# Keys of a flavor's section that name a file or folder of the model.
PATH_KEYS = ("data", "model_data", "model_binary", "python_model", "pickled_model", "code")
# MLflow's column types as numpy-style dtypes (the names modelhub's signatures use).
COLUMN_DTYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "string",
    "binary": "bytes",
    "datetime": "datetime64",
}
TASK_TYPES = {
    "text-classification": "classification",
    "token-classification": "classification",
    "zero-shot-classification": "classification",
    "image-classification": "classification",
    "text-generation": "generation",
    "text2text-generation": "generation",
    "summarization": "generation",
    "translation": "generation",
    "feature-extraction": "embedding_model",
    "fill-mask": "language_model",
}
MAX_FIELD_CHARS = 200


def read_mlflow(folder: Path) -> ImportPlan:
    """The import plan of the MLflow model directory `folder`.

    Raises InvalidInput for a folder without MLmodel, a malformed, oversized or deeply
    nested MLmodel, an unknown flavor (naming it and the supported ones), a path that
    leads outside the folder, or a symbolic link.
    """
    if not folder.is_dir():
        raise InvalidInput(
            f"{folder.name} is not a folder: an MLflow model is a directory holding MLmodel",
            {"path": folder.name},
        )
    no_links_out(folder)
    mlmodel = _mlmodel(folder)
    flavors = mlmodel.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise InvalidInput("MLmodel names no flavors (a 'flavors:' mapping)", {"path": MLMODEL})
    unknown = sorted(str(name) for name in flavors if name not in SUPPORTED_FLAVORS)
    if unknown:
        raise InvalidInput(
            f"MLmodel has flavor {', '.join(unknown)}, which modelhub does not import; "
            f"supported flavors: {', '.join(SUPPORTED_FLAVORS)}",
            {"path": MLMODEL, "unknown": unknown, "supported": list(SUPPORTED_FLAVORS)},
        )
    for name, fields in flavors.items():
        if not isinstance(fields, dict):
            raise InvalidInput(f"MLmodel: flavor {name} is not a mapping", {"path": MLMODEL})
        _check_paths(folder, name, fields)
    flavor = next(name for name in SUPPORTED_FLAVORS if name in flavors)
    section: dict[str, Any] = flavors[flavor]
    details = _details(folder, mlmodel, flavor, sorted(flavors))
    signature = _signature(mlmodel.get("signature"))
    card = (
        read_text(folder / "README.md", "README.md") if (folder / "README.md").is_file() else None
    )
    metadata = mlmodel.get("metadata")
    license = metadata.get("license") if isinstance(metadata, dict) else None
    common: dict[str, Any] = {
        "signature": signature,
        "card": card,
        "license": license if isinstance(license, str) else None,
    }
    if flavor == "onnx":
        data = inside(folder, section.get("data", "model.onnx"), "MLmodel: flavors.onnx.data")
        if not data.is_file() or data.suffix.lower() != ".onnx":
            raise InvalidInput(
                "MLmodel: flavors.onnx.data must name the model's .onnx file", {"path": MLMODEL}
            )
        return ImportPlan(
            files=_model_files(folder), framework=Framework.ONNX, details=details, **common
        )
    if flavor == "transformers":
        return _transformers(folder, section, details, common)
    if flavor == "pytorch":
        return _pytorch(folder, section, details, common)
    return ImportPlan(files=_model_files(folder), details=details, **common)


def _mlmodel(folder: Path) -> dict[str, Any]:
    path = folder / MLMODEL
    if not path.is_file():
        raise InvalidInput(
            f"{folder.name} has no MLmodel file, so it is not an MLflow model directory "
            "(mlflow.<flavor>.save_model writes one; point at the folder holding it)",
            {"path": MLMODEL},
        )
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise InvalidInput(
            f"MLmodel is {size} bytes, more than {MAX_YAML_BYTES}", {"path": MLMODEL}
        )
    try:
        parsed = load_yaml_bounded(path.read_bytes())
    except YamlRefused as exc:
        raise InvalidInput(f"MLmodel {exc}", {"path": MLMODEL}) from exc
    if not isinstance(parsed, dict):
        raise InvalidInput("MLmodel is not a YAML mapping", {"path": MLMODEL})
    return parsed


def _check_paths(folder: Path, flavor: str, section: dict[str, Any]) -> None:
    """Every path a flavor names, and every artifact path, stays inside the folder."""
    for key in PATH_KEYS:
        value = section.get(key)
        if value is not None:
            inside(folder, value, f"MLmodel: flavors.{flavor}.{key}")
    env = section.get("env")
    if isinstance(env, dict):
        for key, value in env.items():
            if isinstance(value, str):
                inside(folder, value, f"MLmodel: flavors.{flavor}.env.{key}")
    artifacts = section.get("artifacts")
    if isinstance(artifacts, dict):
        for key, value in artifacts.items():
            path = value.get("path") if isinstance(value, dict) else value
            inside(folder, path, f"MLmodel: flavors.{flavor}.artifacts.{key}")


def _model_files(folder: Path, under: Path | None = None) -> list[tuple[str, Path]]:
    """Files under `under` (default: the whole folder, MLflow's own files left out),
    named relative to `under`."""
    root = under or folder
    found = [
        (path.relative_to(root).as_posix(), path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not (under is None and path.relative_to(folder).as_posix() in METADATA_FILES)
    ]
    if not found:
        where = root.relative_to(folder).as_posix() if root != folder else folder.name
        raise InvalidInput(f"{where} holds no model files", {"path": where})
    return found


def _transformers(
    folder: Path, section: dict[str, Any], details: dict[str, Any], common: dict[str, Any]
) -> ImportPlan:
    binary = inside(
        folder, section.get("model_binary", "model"), "MLmodel: flavors.transformers.model_binary"
    )
    if not (binary / "config.json").is_file():
        raise InvalidInput(
            "the transformers flavor holds no model folder with config.json (saved with "
            "save_pretrained=False, it names a Hub model instead of holding weights)",
            {"path": MLMODEL},
        )
    files = _model_files(folder, binary)
    components = section.get("components") or []
    if not isinstance(components, list):
        raise InvalidInput(
            "MLmodel: flavors.transformers.components is not a list", {"path": MLMODEL}
        )
    for component in components:
        where = inside(
            folder, f"components/{component}", "MLmodel: flavors.transformers.components"
        )
        if where.is_dir():
            files += _model_files(folder, where)
    task = section.get("task")
    details["transformers"] = {
        key: _short(section[key])
        for key in (
            "task",
            "pipeline_model_type",
            "source_model_name",
            "transformers_version",
            "framework",
        )
        if key in section
    }
    return ImportPlan(
        files=files,
        framework=Framework.HUGGINGFACE,
        details=details,
        model_type=TASK_TYPES.get(task) if isinstance(task, str) else None,
        **common,
    )


def _pytorch(
    folder: Path, section: dict[str, Any], details: dict[str, Any], common: dict[str, Any]
) -> ImportPlan:
    data = inside(folder, section.get("model_data", "data"), "MLmodel: flavors.pytorch.model_data")
    if not data.exists():
        raise InvalidInput("MLmodel: flavors.pytorch.model_data names nothing", {"path": MLMODEL})
    if data.is_dir() and any(p.suffix == ".pt2" for p in data.rglob("*")):
        raise InvalidInput(
            "this pytorch model was saved as a torch.export program (model.pt2, MLflow's "
            "default), which modelhub cannot inspect without running it; save it with "
            "serialization_format='pickle' and import it with --trust, or export it to ONNX",
            {"path": MLMODEL, "format": "pt2"},
        )
    files = _model_files(folder, data) if data.is_dir() else [(data.name, data)]
    return ImportPlan(files=files, framework=Framework.PYTORCH, details=details, **common)


def _details(
    folder: Path, mlmodel: dict[str, Any], flavor: str, flavors: list[str]
) -> dict[str, Any]:
    details: dict[str, Any] = {"from": "mlflow", "flavor": flavor, "flavors": flavors}
    for key in (
        "mlflow_version",
        "run_id",
        "model_uuid",
        "model_id",
        "artifact_path",
        "utc_time_created",
    ):
        value = mlmodel.get(key)
        if value is not None:
            details[key] = _short(value)
    python = mlmodel["flavors"].get("python_function", {}).get("python_version")
    if python is not None:
        details["python_version"] = _short(python)
    requirements = _requirements(folder)
    if requirements:
        details["requirements"] = requirements
    raw = mlmodel.get("signature")
    if isinstance(raw, dict):
        details["signature"] = {k: _short(v, 4000) for k, v in raw.items() if v is not None}
    return details


def _requirements(folder: Path) -> list[str]:
    if (folder / "requirements.txt").is_file():
        return requirement_lines(read_text(folder / "requirements.txt", "requirements.txt"))
    conda = folder / "conda.yaml"
    if not conda.is_file():
        return []
    try:
        env = load_yaml_bounded(read_text(conda, "conda.yaml").encode())
    except YamlRefused as exc:
        raise InvalidInput(f"conda.yaml {exc}", {"path": "conda.yaml"}) from exc
    found: list[str] = []
    dependencies = env.get("dependencies") if isinstance(env, dict) else None
    for dependency in dependencies if isinstance(dependencies, list) else []:
        pip = dependency.get("pip") if isinstance(dependency, dict) else None
        if isinstance(pip, list):
            found += [d for d in pip if isinstance(d, str)]
        elif isinstance(dependency, str):
            found.append(dependency)
    return [plain_text(d, 500) for d in found if not d.startswith("-r ")][:500]


def _signature(raw: Any) -> Signature | None:
    """MLflow's signature (inputs/outputs as JSON text) as modelhub's Signature."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInput("MLmodel: signature is not a mapping", {"path": MLMODEL})
    return Signature(
        inputs=_specs(raw.get("inputs"), "inputs"), outputs=_specs(raw.get("outputs"), "outputs")
    )


def _specs(text: Any, role: str) -> list[TensorSpec]:
    if text is None:
        return []
    where = f"MLmodel: signature.{role}"
    try:
        items = loads_bounded(text) if isinstance(text, str) else None
    except JsonRefused as exc:
        raise InvalidInput(f"{where} {exc}", {"path": MLMODEL}) from exc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidInput(f"{where} is not a JSON list of specs", {"path": MLMODEL})
    specs: list[TensorSpec] = []
    for index, item in enumerate(items[:1000]):
        name = _short(item.get("name") or f"{role[:-1]}_{index}")
        if item.get("type") == "tensor":
            tensor = item.get("tensor-spec")
            if not isinstance(tensor, dict):
                raise InvalidInput(f"{where}[{index}] has no tensor-spec", {"path": MLMODEL})
            shape = tensor.get("shape") or []
            dims = (
                [d if isinstance(d, int) else _short(d) for d in shape]
                if isinstance(shape, list)
                else []
            )
            specs.append(
                TensorSpec(name=name, dtype=_short(tensor.get("dtype", "unknown")), shape=dims)
            )
        else:
            kind = _short(item.get("type", "unknown"))
            specs.append(TensorSpec(name=name, dtype=COLUMN_DTYPES.get(kind, kind), shape=[-1]))
    return specs


def _short(value: Any, limit: int = MAX_FIELD_CHARS) -> str:
    return plain_text(value, limit)
