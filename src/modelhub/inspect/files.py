"""Inspect one file: detect its format by content, refuse names that lie, dispatch."""

from __future__ import annotations

from pathlib import Path

from modelhub.domain.records import Inspection
from modelhub.errors import InvalidInput
from modelhub.inspect.builtin import Inspector
from modelhub.inspect.onnx_format import inspect_onnx
from modelhub.inspect.safetensors_format import inspect_safetensors
from modelhub.inspect.sniff import EXPECTED_BY_SUFFIX, Kind, describe, invalid, sniff
from modelhub.plugins import Registry, needs


def _inspector(obj: object) -> Inspector:
    needs(obj, "claims", "inspect")
    return obj  # type: ignore[return-value]


# The built-ins are named after the content kind they read; plugins are asked only
# about a file no built-in recognises (see `inspect_file`).
INSPECTORS: Registry[Inspector] = Registry(
    "inspectors",
    _inspector,
    [
        ("safetensors", "modelhub.inspect.builtin:safetensors", "safetensors headers and tensors"),
        ("onnx", "modelhub.inspect.builtin:onnx", "ONNX graphs: opset, inputs and outputs"),
        ("torch_zip", "modelhub.inspect.builtin:torch_zip", "PyTorch zip files (weights_only)"),
        ("pickle", "modelhub.inspect.builtin:pickle", "pickles, scanned, never unpickled"),
    ],
)


def _builtin(kind: Kind, path: Path) -> Inspection:
    return INSPECTORS.get(kind.value).inspect(path)


def _plugin_inspection(path: Path) -> Inspection | None:
    """What the first installed inspector plugin that claims `path` says, if any."""
    for name, inspector, builtin in INSPECTORS.loaded():
        if builtin:
            continue
        try:
            if not inspector.claims(path):
                continue
            inspection = inspector.inspect(path)
        except InvalidInput:
            raise
        except Exception as exc:  # a plugin may raise anything; say whose fault it is
            raise InvalidInput(
                f"inspector plugin {name!r} failed on {path.name}: {type(exc).__name__}: {exc}",
                {"path": str(path), "inspector": name},
            ) from exc
        if not isinstance(inspection, Inspection):
            raise InvalidInput(
                f"inspector plugin {name!r} gave a {type(inspection).__name__} for {path.name},"
                " not an Inspection",
                {"path": str(path), "inspector": name},
            )
        return inspection
    return None


def is_model_file(path: Path) -> bool:
    """Whether a file's name says it holds model weights (used to pick files in a folder)."""
    return path.suffix.lower() in EXPECTED_BY_SUFFIX


def inspect_file(path: Path) -> Inspection:
    """Inspect a single model file; raise InvalidInput when it is not what it claims."""
    expected = EXPECTED_BY_SUFFIX.get(path.suffix.lower())
    what = expected[1] if expected else "model file"
    if path.stat().st_size == 0:
        raise invalid(path, what, "the file is empty")
    kind = sniff(path)
    if kind is Kind.COMPRESSED:
        raise invalid(
            path, what, describe(kind) + "; save it uncompressed so it can be inspected safely"
        )
    if expected is None:
        if kind is Kind.UNKNOWN:
            found = _plugin_inspection(path)
            if found is not None:
                return found
            raise InvalidInput(
                f"{path.name} is not a recognised model file "
                "(safetensors, ONNX, PyTorch or pickle)",
                {"path": str(path)},
            )
        return _builtin(kind, path)
    kinds, _ = expected
    if kind is Kind.UNKNOWN:
        # Let the format's own reader explain precisely what is wrong (or accept an
        # unusual but valid layout, such as an ONNX file not starting with ir_version).
        if Kind.SAFETENSORS in kinds:
            return inspect_safetensors(path)
        if Kind.ONNX in kinds:
            return inspect_onnx(path)
        if Kind.TORCH_ZIP in kinds:
            raise invalid(path, what, "neither a zip archive nor a pickle")
        raise invalid(path, what, "it does not start with a pickle protocol 2+ header")
    if kind not in kinds:
        raise invalid(path, what, describe(kind))
    return _builtin(kind, path)
