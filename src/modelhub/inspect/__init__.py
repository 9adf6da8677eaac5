"""Read a model file or folder and tell what it is, never executing model code.

`inspect_model` is the one entry point: it detects the format from content, checks it
against what the user declared, and adds a serving-resource estimate.

Every reader bounds what it parses (JSON depth and integer digits, object graphs,
zip entries, pickle lengths) and translates its third-party parser's errors into
InvalidInput naming the file and format. This boundary adds two things: an error
names paths relative to what was inspected (an upload's files, never the server's
folders), and the answer fits what the registry stores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection
from modelhub.errors import InvalidInput
from modelhub.inspect.files import inspect_file
from modelhub.inspect.folder import inspect_folder
from modelhub.inspect.huggingface_format import inspect_huggingface
from modelhub.inspect.resources import estimate
from modelhub.inspect.trained_format import inspect_trained, is_trained_folder

__all__ = ["inspect_model"]

MAX_ARCHITECTURE_CHARS = 128  # the registry's column
MAX_CONTEXT_LENGTH = 2**31 - 1
MAX_PARAMETERS = 2**63 - 1

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
        raise InvalidInput(f"no such file or directory: {path.name}", {"path": path.name})
    root = path if path.is_dir() else path.parent
    try:
        return _checked(_inspect(path, framework))
    except InvalidInput as exc:
        raise InvalidInput(
            _strip_root(exc.message, root),
            {key: _relative(value, root) for key, value in exc.details.items()},
        ) from exc


def _inspect(path: Path, framework: Framework | None) -> Inspection:
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


def _checked(inspection: Inspection) -> Inspection:
    """Refuse an answer the registry could not store (numbers come from the file)."""
    architecture = inspection.architecture
    if architecture is not None and len(architecture) > MAX_ARCHITECTURE_CHARS:
        raise InvalidInput(
            f"architecture name {architecture[:40]!r}... is longer than "
            f"{MAX_ARCHITECTURE_CHARS} characters",
            {"field": "architecture"},
        )
    context = inspection.context_length
    if context is not None and not 1 <= context <= MAX_CONTEXT_LENGTH:
        raise InvalidInput(
            f"context length {context} is not between 1 and {MAX_CONTEXT_LENGTH}",
            {"field": "context_length"},
        )
    parameters = inspection.parameters
    if parameters is not None and not 0 <= parameters <= MAX_PARAMETERS:
        raise InvalidInput(
            f"the file claims {parameters} parameters, more than any model has",
            {"field": "parameters"},
        )
    return inspection


def _relative(value: Any, root: Path) -> Any:
    """A path inside `root` as the upload names it; any other absolute path as its name."""
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    path = Path(value)
    if path == root:
        return "."
    if path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.name


def _strip_root(message: str, root: Path) -> str:
    return message.replace(str(root) + os.sep, "").replace(str(root), root.name)


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
