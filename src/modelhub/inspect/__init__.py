"""Read a model file or folder and tell what it is, never executing model code.

`inspect_model` is the one entry point: it detects the format from content, checks it
against what the user declared, and adds a serving-resource estimate.
"""

from __future__ import annotations

from pathlib import Path

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection
from modelhub.errors import InvalidInput
from modelhub.inspect.files import inspect_file
from modelhub.inspect.folder import inspect_folder
from modelhub.inspect.huggingface_format import inspect_huggingface
from modelhub.inspect.resources import estimate
from modelhub.inspect.trained_format import inspect_trained, is_trained_folder

__all__ = ["inspect_model"]

# Detected framework -> the declarations that do not contradict it.
_ACCEPTS: dict[Framework, frozenset[Framework]] = {
    Framework.SAFETENSORS: frozenset({Framework.SAFETENSORS, Framework.PYTORCH}),
    Framework.ONNX: frozenset({Framework.ONNX}),
    Framework.PYTORCH: frozenset({Framework.PYTORCH, Framework.CUSTOM}),
    Framework.HUGGINGFACE: frozenset(
        {Framework.HUGGINGFACE, Framework.PYTORCH, Framework.SAFETENSORS}
    ),
    Framework.SKLEARN: frozenset({Framework.SKLEARN, Framework.CUSTOM}),
    Framework.CUSTOM: frozenset({Framework.CUSTOM, Framework.SKLEARN, Framework.PYTORCH}),
}


def inspect_model(path: Path, framework: Framework | None = None) -> Inspection:
    """Inspect a model file or folder without running it.

    `framework` is what the user declared; None means detect. Raises InvalidInput for a
    missing path, an empty folder, a file whose content is not what its name or the
    declaration says, or a corrupt file.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"no such file or directory: {path}", {"path": str(path)})
    if path.is_dir():
        if is_trained_folder(path):
            inspection = inspect_trained(path)
        elif (path / "config.json").is_file():
            inspection = inspect_huggingface(path)
        else:
            inspection = inspect_folder(path)
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    elif path.is_file():
        inspection = inspect_file(path)
        size = path.stat().st_size
    else:
        raise InvalidInput(f"not a regular file or folder: {path}", {"path": str(path)})
    inspection = _reconcile(path, inspection, framework)
    resources = estimate(inspection.parameters, inspection.precision, size)
    return inspection.model_copy(update={"resources": resources})


def _reconcile(path: Path, inspection: Inspection, declared: Framework | None) -> Inspection:
    detected = inspection.framework
    if declared is None or declared is detected:
        return inspection
    if declared not in _ACCEPTS[detected]:
        raise InvalidInput(
            f"{path.name} was declared as {declared.value} but its content is {detected.value}",
            {"path": str(path), "declared": declared.value, "detected": detected.value},
        )
    if detected is Framework.CUSTOM:
        # A pickle's globals cannot always name its library; the declaration can.
        return inspection.model_copy(update={"framework": declared})
    return inspection
