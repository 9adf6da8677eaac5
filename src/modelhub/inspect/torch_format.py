"""Read zip-based torch files with `weights_only=True` (no arbitrary code), else scan them.

A state dict (possibly nested under "state_dict" or "model") is summarised like a
safetensors header. A file that needs arbitrary globals to load is never loaded: it is
scanned with picklescan and reported as requiring trust. A file whose archive or
pickle is malformed (torch's own reader then raises anything from KeyError to
struct.error) is refused as invalid, and so is an object graph deeper than
MAX_DEPTH or one that contains itself. A container shared by several parents is
walked once, so a pickle of a few bytes cannot make the walk exponential.
"""

from __future__ import annotations

import pickle
import struct
import warnings
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
MAX_DEPTH = 64  # containers within containers; a checkpoint nests a few
MAX_ZIP_ENTRIES = 1_000_000
_SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

# What the archive reader and the weights-only unpickler raise on malformed bytes.
_ZIP_ERRORS = (zipfile.BadZipFile, ValueError, NotImplementedError, EOFError, OSError)
_LOAD_ERRORS = (
    RuntimeError,
    ValueError,
    EOFError,
    OSError,
    IndexError,
    KeyError,
    struct.error,
    TypeError,
    AssertionError,
    AttributeError,
    NotImplementedError,
    OverflowError,
    RecursionError,
    MemoryError,
)


class _TooLarge(Exception):
    pass


def inspect_torch_zip(path: Path) -> Inspection:
    """Inspect a torch.save zip archive without executing pickled code."""
    import torch

    if not any(n.endswith("data.pkl") for n in _archive_names(path)):
        raise invalid(path, WHAT, "zip archive without a pickled data.pkl record")
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol an upload used; not the user's concern here
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        return _requires_trust(path, exc)
    except _LOAD_ERRORS as exc:
        problem = f"its pickled data is malformed ({type(exc).__name__}: {_first_line(exc)})"
        raise invalid(path, WHAT, problem) from exc
    return _describe(path, obj, torch)


def _archive_names(path: Path) -> list[str]:
    """The entry names of a zip that every reader after this one can open."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        return []  # not an archive at all: the caller says what it lacks
    except UnicodeDecodeError as exc:
        raise invalid(path, WHAT, "its zip entry names are not valid UTF-8") from exc
    except _ZIP_ERRORS as exc:
        problem = f"unreadable zip archive ({type(exc).__name__}: {_first_line(exc)})"
        raise invalid(path, WHAT, problem) from exc
    if len(entries) > MAX_ZIP_ENTRIES:
        raise invalid(path, WHAT, f"its zip archive has more than {MAX_ZIP_ENTRIES} entries")
    for entry in entries:
        if entry.compress_type not in _SUPPORTED_COMPRESSION or entry.flag_bits & 0x1:
            raise invalid(
                path,
                WHAT,
                f"zip entry {entry.filename[:100]!r} is encrypted or uses "
                "an unsupported compression method",
            )
    return [entry.filename for entry in entries]


def _requires_trust(path: Path, exc: BaseException) -> Inspection:
    report = scan(path, WHAT)
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


def _describe(path: Path, obj: Any, torch: Any) -> Inspection:
    state, wrapper = _unwrap(obj)
    summary = TensorSummary()
    try:
        skipped = _collect(state, "", summary, torch, [], set())
    except _TooLarge as exc:
        raise invalid(path, WHAT, str(exc)) from None
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


def _collect(
    obj: Any,
    prefix: str,
    summary: TensorSummary,
    torch: Any,
    ancestors: list[int],
    walked: set[int],
) -> int:
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
    if id(obj) in ancestors:
        raise _TooLarge(f"{prefix} refers back to an object that contains it (a cycle)")
    if id(obj) in walked:
        return 0  # shared with an earlier parent: its tensors are counted already
    if len(ancestors) >= MAX_DEPTH:
        raise _TooLarge(f"its objects nest deeper than {MAX_DEPTH} levels")
    walked.add(id(obj))
    ancestors.append(id(obj))
    skipped = sum(_collect(value, name, summary, torch, ancestors, walked) for name, value in items)
    ancestors.pop()
    return skipped


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
