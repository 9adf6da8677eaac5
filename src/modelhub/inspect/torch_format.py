"""Read zip-based torch files with `weights_only=True` (no arbitrary code), else scan them.

A state dict (possibly nested under "state_dict" or "model") is summarised like a
safetensors header. A file that needs arbitrary globals to load is never loaded: it is
scanned with picklescan and reported as requiring trust.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection
from modelhub.inspect.pickle_scan import scan
from modelhub.inspect.sniff import invalid
from modelhub.inspect.tensors import TensorSummary

WHAT = "PyTorch file"
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def inspect_torch_zip(path: Path) -> Inspection:
    """Inspect a torch.save zip archive without executing pickled code."""
    import torch

    if not _is_torch_archive(path):
        raise invalid(path, WHAT, "zip archive without a pickled data.pkl record")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        return _requires_trust(path, exc)
    except (RuntimeError, ValueError, EOFError, OSError) as exc:
        raise invalid(path, WHAT, _first_line(exc)) from exc
    return _describe(obj, torch)


def _is_torch_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("data.pkl") for n in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _requires_trust(path: Path, exc: BaseException) -> Inspection:
    report = scan(path)
    return Inspection(
        framework=Framework.PYTORCH,
        requires_trust=True,
        pickle_findings=report.findings,
        details={
            "format": "torch_zip",
            "trust_reason": "weights_only load refused it: " + _first_line(exc),
            "pickle_scan": report.as_details(),
        },
    )


def _describe(obj: Any, torch: Any) -> Inspection:
    state, wrapper = _unwrap(obj)
    summary = TensorSummary()
    skipped = _collect(state, "", summary, torch)
    precision, precision_details = summary.precision()
    details: dict[str, Any] = {"format": "torch_zip", **precision_details}
    if wrapper:
        details["state_dict_key"] = wrapper
    if skipped:
        details["non_tensor_entries"] = skipped
    if not summary.tensor_count:
        details["note"] = "no tensors found in the file"
    return Inspection(
        framework=Framework.PYTORCH,
        architecture=summary.architecture(),
        parameters=summary.parameters,
        precision=precision,
        dtypes=dict(summary.params_by_dtype),
        tensor_count=summary.tensor_count,
        details=details,
    )


def _unwrap(obj: Any) -> tuple[Any, str | None]:
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                return obj[key], key
    return obj, None


def _collect(obj: Any, prefix: str, summary: TensorSummary, torch: Any) -> int:
    """Add every tensor under `obj` to `summary`; return how many other leaves were skipped."""
    if isinstance(obj, torch.Tensor):
        dtype = str(obj.dtype).removeprefix("torch.")
        summary.add(prefix or "tensor", dtype, tuple(obj.shape))
        return 0
    if isinstance(obj, dict):
        items = ((f"{prefix}.{k}" if prefix else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        items = ((f"{prefix}.{i}" if prefix else str(i), v) for i, v in enumerate(obj))
    else:
        return 1
    return sum(_collect(value, name, summary, torch) for name, value in items)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
