"""Write a version's files in another platform's layout.

`check_exportable` says, before any file is read, whether a version can go to a
format; `write_export` then writes the layout into an empty folder from the version's
files (already downloaded into `source`).

- onnx: the version's .onnx graph as it is, or, for a modelhub-trained folder, the
  graph `modelhub.serving.export.export_onnx` writes.
- mlflow: that ONNX folder plus MLmodel (the `onnx` flavor, with `python_function`
  loading through `mlflow.onnx`), its signature, requirements.txt, python_env.yaml,
  conda.yaml and the model card as README.md: `mlflow.pyfunc.load_model` loads it.
- huggingface: config.json, the safetensors weights and tokenizer files as stored,
  with the model card as README.md.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import ModelVersion, Signature
from modelhub.errors import InvalidInput
from modelhub.interop import ExportFormat

CARD = "README.md"
ONNX_FILE = "model.onnx"


def is_trained(version: ModelVersion) -> bool:
    """Written by one of modelhub's own trainers (config.json naming the trainer)."""
    return version.inspection.get("format") == "modelhub"


def check_exportable(version: ModelVersion, to: ExportFormat) -> None:
    """Raise InvalidInput, naming the version's format, when it cannot go to `to`."""
    ref = f"{version.name}@{version.version}"
    paths = {f.path for f in version.files}
    if to is ExportFormat.HUGGINGFACE:
        if "config.json" in paths and any(p.endswith(".safetensors") for p in paths):
            return
        raise InvalidInput(
            f"{ref} is {version.framework.value} without config.json and safetensors weights; "
            "a Hugging Face folder needs both (try --to onnx or --to mlflow for an ONNX model)",
            {"ref": ref, "framework": version.framework.value, "to": to.value},
        )
    if version.framework is Framework.ONNX or is_trained(version):
        return
    raise InvalidInput(
        f"{ref} is {version.framework.value}, which modelhub cannot turn into ONNX; "
        f"--to {to.value} takes ONNX models and modelhub-trained models"
        + (" (try --to huggingface)" if "config.json" in paths else ""),
        {"ref": ref, "framework": version.framework.value, "to": to.value},
    )


def write_export(
    version: ModelVersion, source: Path, to: ExportFormat, out: Path, card: str | None
) -> None:
    """Write `version` (its files under `source`) as `to` into the empty folder `out`
    (for huggingface, `source` may be `out` itself: its files are the export)."""
    if to is ExportFormat.HUGGINGFACE:
        if source != out:
            _copy_files(version, source, out)
    else:
        _onnx_folder(version, source, out)
        if to is ExportFormat.MLFLOW:
            _mlflow_files(version, out)
    if card and not (out / CARD).exists():
        (out / CARD).write_text(card, encoding="utf-8")


def _copy_files(version: ModelVersion, source: Path, out: Path) -> None:
    for entry in version.files:
        target = out / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / entry.path, target)


def _onnx_folder(version: ModelVersion, source: Path, out: Path) -> None:
    if version.framework is Framework.ONNX:
        _copy_files(version, source, out)
        graphs = sorted(out.glob("*.onnx"))
        if len(graphs) == 1 and graphs[0].name != ONNX_FILE and not (out / ONNX_FILE).exists():
            graphs[0].rename(out / ONNX_FILE)  # external data stays beside it, named as before
        return
    from modelhub.serving.export import export_onnx

    export_onnx(source, out)


def _mlflow_files(version: ModelVersion, out: Path) -> None:
    import yaml

    from modelhub.inspect.onnx_format import inspect_onnx

    graphs = sorted(p.name for p in out.glob("*.onnx"))
    if len(graphs) != 1:
        raise InvalidInput(
            f"{version.name}@{version.version} holds {len(graphs)} ONNX graphs at its top; "
            "an MLflow model takes one",
            {"graphs": graphs},
        )
    graph = graphs[0]
    signature = inspect_onnx(out / graph).signature
    python = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    requirements = [f"{name}=={_installed(name)}" for name in ("onnx", "onnxruntime", "numpy")]
    requirements.insert(0, "mlflow")
    mlmodel: dict[str, Any] = {
        "flavors": {
            "onnx": {
                "code": None,
                "data": graph,
                "onnx_version": _installed("onnx"),
                "providers": ["CPUExecutionProvider"],
            },
            "python_function": {
                "data": graph,
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.onnx",
                "python_version": python,
            },
        },
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "signature": _mlflow_signature(signature),
        "metadata": {
            "exported_from": "modelhub",
            "modelhub_ref": f"{version.name}@{version.version}",
            "modelhub_digest": version.digest,
        },
    }
    (out / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=True), encoding="utf-8")
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    python_env = {
        "python": python,
        "build_dependencies": ["pip"],
        "dependencies": ["-r requirements.txt"],
    }
    (out / "python_env.yaml").write_text(yaml.safe_dump(python_env), encoding="utf-8")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": requirements}],
        "name": "mlflow-env",
    }
    (out / "conda.yaml").write_text(yaml.safe_dump(conda), encoding="utf-8")


def _mlflow_signature(signature: Signature) -> dict[str, Any]:
    import json

    def specs(tensors: list[Any]) -> str:
        return json.dumps(
            [
                {
                    "type": "tensor",
                    "tensor-spec": {
                        "dtype": spec.dtype,
                        "shape": [d if isinstance(d, int) and d >= 0 else -1 for d in spec.shape],
                    },
                    "name": spec.name,
                }
                for spec in tensors
            ]
        )

    return {"inputs": specs(signature.inputs), "outputs": specs(signature.outputs), "params": None}


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
