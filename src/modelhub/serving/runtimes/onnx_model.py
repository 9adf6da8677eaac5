"""The `onnx` runtime: any ONNX graph whose inputs and outputs are plain tensors, run by
ONNX Runtime on the CPU with one thread (the server runs many models side by side and
batches requests; one thread per model keeps them from fighting over cores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.serving.runtimes._common import unloaded
from modelhub.serving.runtimes.base import RuntimeInfo

RUNTIME = "onnx"
# Graphs smaller than this run in microseconds: inline on the event loop, no thread hop.
BLOCKING_BYTES = 4 * 1024 * 1024
ORT_DATATYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def _spec(node: Any, role: str, path: Path) -> TensorSpec:
    datatype = ORT_DATATYPES.get(node.type)
    if datatype is None:
        raise InvalidInput(
            f"{path.name}: {role} {node.name!r} has type {node.type}, which the Open Inference"
            " Protocol cannot carry",
            {"path": str(path), role: node.name},
        )
    shape: list[int | str] = [d if isinstance(d, int) and d >= 0 else -1 for d in node.shape or []]
    return TensorSpec(name=node.name, dtype=datatype, shape=shape)


class OnnxRuntime:
    """Feeds inputs by name, returns every graph output by name.

    `in_folder`: the graph sits in a model folder, whose other files (external
    weights) count towards its memory. A graph of `blocking_bytes` or more runs
    off the event loop.
    """

    def __init__(
        self, path: Path, in_folder: bool = False, blocking_bytes: int = BLOCKING_BYTES
    ) -> None:
        import onnxruntime as ort
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

        self._invalid_argument = (InvalidArgument, ValueError)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own unexported exception classes
            raise InvalidInput(
                f"{path.name} is not a model ONNX Runtime can load: {exc}", {"path": str(path)}
            ) from exc
        inputs = [_spec(node, "input", path) for node in self._session.get_inputs()]
        outputs = [_spec(node, "output", path) for node in self._session.get_outputs()]
        self._output_names = [spec.name for spec in outputs]
        size = _folder_bytes(path) if in_folder else path.stat().st_size
        self.info = RuntimeInfo(
            runtime=RUNTIME,
            signature=Signature(inputs=inputs, outputs=outputs),
            memory_bytes=size,
            blocking=size >= blocking_bytes,
            details={"file": path.name},
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        session = self._session
        if session is None:
            raise unloaded(RUNTIME)
        try:
            results = session.run(self._output_names, inputs)
        except self._invalid_argument as exc:
            if "while running" in str(exc):
                # A node failed on these values: the model's own failure, not the caller's.
                raise
            # Refused before running: a missing input, a wrong dtype or shape.
            raise InvalidInput(
                f"ONNX Runtime refused the inputs: {exc}", {"field": "inputs"}
            ) from exc
        return dict(zip(self._output_names, results, strict=True))

    def unload(self) -> None:
        self._session = None


def _folder_bytes(path: Path) -> int:
    """The graph and every other file beside it (external weights live there)."""
    return sum(p.stat().st_size for p in path.parent.rglob("*") if p.is_file())
