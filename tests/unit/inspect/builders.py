"""Builders for real model files, made in tmp_path by the tests that need them."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np


def write_raw_safetensors(path: Path, header: dict[str, Any], data: bytes) -> Path:
    """Write a safetensors file byte by byte, so tests can make it wrong on purpose."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def save_numpy_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    from safetensors.numpy import save_file

    save_file(tensors, str(path))
    return path


def mlp_onnx_model(hidden: int = 8) -> Any:
    """A 4 -> hidden -> 2 MLP with initializers, built directly with onnx.helper."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, hidden)).astype(np.float32), "W1"),
        numpy_helper.from_array(np.zeros(hidden, np.float32), "B1"),
        numpy_helper.from_array(rng.standard_normal((hidden, 2)).astype(np.float32), "W2"),
        numpy_helper.from_array(np.zeros(2, np.float32), "B2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["X", "W1", "B1"], ["H"]),
        helper.make_node("Relu", ["H"], ["A"]),
        helper.make_node("Gemm", ["A", "W2", "B2"], ["Y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(
        graph, producer_name="modelhub-tests", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


def conv_onnx_model() -> Any:
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((3, 1, 3, 3), np.float32), "K")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["X", "K"], ["Y"])],
        "cnn",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3, 6, 6])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save_onnx(path: Path, model: Any) -> Path:
    import onnx

    onnx.save(model, str(path))
    return path


class Evil:
    """Pickling this records a call to os.system; only unpickling would make that call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def torch_zip_with_pickle(
    path: Path, data_pkl: bytes, extra: dict[str, bytes] | None = None
) -> Path:
    """A real torch.save archive whose data.pkl is replaced by `data_pkl` (and more entries)."""
    import zipfile

    import torch

    template = path.with_name(path.name + ".template")
    torch.save({"w": torch.zeros(2)}, template)
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(path, "w") as out:
        for name in source.namelist():
            out.writestr(name, data_pkl if name.endswith("data.pkl") else source.read(name))
        prefix = source.namelist()[0].split("/")[0]
        for name, data in (extra or {}).items():
            out.writestr(f"{prefix}/{name}", data)
    template.unlink()
    return path


def pickle_unicode(text: str) -> bytes:
    """The BINUNICODE opcode pushing `text`."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw
