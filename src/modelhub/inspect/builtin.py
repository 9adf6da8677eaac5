"""The built-in inspectors, registered under `modelhub.inspectors` like a plugin.

An inspector reads one model file without executing it: `claims(path)` from the
file's first bytes, `inspect(path)` for its Inspection (framework, tensors,
signature, whether it requires trust), raising InvalidInput for a damaged file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from modelhub.domain.records import Inspection
from modelhub.inspect.sniff import Kind, sniff


class Inspector(Protocol):
    """One entry of the `modelhub.inspectors` extension point.

    `claims(path)` looks at a few bytes or the name only; `inspect(path)` must never
    import, unpickle or run anything from the file, raises InvalidInput for a file that
    is not what it claims, and sets `requires_trust=True` for anything that could run
    code when loaded (the registry then refuses it unless an admin trusts it).
    """

    def claims(self, path: Path) -> bool: ...

    def inspect(self, path: Path) -> Inspection: ...


class _ByKind:
    def __init__(self, kind: Kind, reader: Callable[[Path], Inspection], doc: str) -> None:
        self.kind = kind
        self.reader = reader
        self.description = doc

    def claims(self, path: Path) -> bool:
        return sniff(path) is self.kind

    def inspect(self, path: Path) -> Inspection:
        return self.reader(path)


def _safetensors(path: Path) -> Inspection:
    from modelhub.inspect.safetensors_format import inspect_safetensors

    return inspect_safetensors(path)


def _onnx(path: Path) -> Inspection:
    from modelhub.inspect.onnx_format import inspect_onnx

    return inspect_onnx(path)


def _torch_zip(path: Path) -> Inspection:
    from modelhub.inspect.torch_format import inspect_torch_zip

    return inspect_torch_zip(path)


def _pickle(path: Path) -> Inspection:
    from modelhub.inspect.pickle_scan import inspect_pickle

    return inspect_pickle(path)


safetensors = _ByKind(Kind.SAFETENSORS, _safetensors, "safetensors files: header and tensors")
onnx = _ByKind(Kind.ONNX, _onnx, "ONNX graphs: opset, inputs and outputs")
torch_zip = _ByKind(Kind.TORCH_ZIP, _torch_zip, "PyTorch zip files, read with weights_only")
pickle = _ByKind(Kind.PICKLE, _pickle, "pickles, scanned (never unpickled); always need trust")
