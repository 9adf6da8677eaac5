"""Inspect one file: detect its format by content, refuse names that lie, dispatch."""

from __future__ import annotations

from pathlib import Path

from modelhub.domain.records import Inspection
from modelhub.errors import InvalidInput
from modelhub.inspect.onnx_format import inspect_onnx
from modelhub.inspect.pickle_scan import inspect_pickle
from modelhub.inspect.safetensors_format import inspect_safetensors
from modelhub.inspect.sniff import EXPECTED_BY_SUFFIX, Kind, describe, invalid, sniff
from modelhub.inspect.torch_format import inspect_torch_zip

_INSPECTORS = {
    Kind.SAFETENSORS: inspect_safetensors,
    Kind.ONNX: inspect_onnx,
    Kind.TORCH_ZIP: inspect_torch_zip,
    Kind.PICKLE: inspect_pickle,
}


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
            raise InvalidInput(
                f"{path.name} is not a recognised model file "
                "(safetensors, ONNX, PyTorch or pickle)",
                {"path": str(path)},
            )
        return _INSPECTORS[kind](path)
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
    return _INSPECTORS[kind](path)
