from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.enums import Framework, Precision
from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import save_numpy_safetensors, write_raw_safetensors


def test_counts_parameters_and_dtypes(tmp_path: Path) -> None:
    path = save_numpy_safetensors(
        tmp_path / "model.safetensors",
        {"layers.0.weight": np.zeros((8, 4), np.float32), "layers.0.bias": np.zeros(8, np.float32)},
    )
    ins = inspect_model(path)
    assert ins.framework is Framework.SAFETENSORS
    assert ins.parameters == 40
    assert ins.tensor_count == 2
    assert ins.precision is Precision.FP32
    assert ins.dtypes == {"float32": 40}
    assert ins.architecture == "mlp"
    assert ins.signature.inputs == [] and ins.signature.outputs == []
    assert ins.requires_trust is False
    assert ins.resources is not None and ins.resources.device_class == "cpu-small"


def test_torch_tensors_and_metadata(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    tensors = {
        "model.layers.0.self_attn.q_proj.weight": torch.zeros(16, 16, dtype=torch.bfloat16),
        "model.layers.0.mlp.up_proj.weight": torch.zeros(32, 16, dtype=torch.bfloat16),
    }
    save_file(tensors, str(path), metadata={"format": "pt"})
    ins = inspect_model(path)
    assert ins.architecture == "llama"
    assert ins.precision is Precision.BF16
    assert ins.parameters == 16 * 16 + 32 * 16
    assert ins.details["metadata"] == {"format": "pt"}


def test_mixed_precision_picks_dominant_and_says_so(tmp_path: Path) -> None:
    path = save_numpy_safetensors(
        tmp_path / "mixed.safetensors",
        {"big": np.zeros((100, 10), np.float16), "small": np.zeros(10, np.float32)},
    )
    ins = inspect_model(path)
    assert ins.precision is Precision.FP16
    assert ins.details["mixed_precision"] == {"fp16": 1000, "fp32": 10}


def test_int8_precision(tmp_path: Path) -> None:
    path = save_numpy_safetensors(tmp_path / "q.safetensors", {"w": np.zeros((4, 4), np.int8)})
    assert inspect_model(path).precision is Precision.INT8


def test_signature_from_metadata(tmp_path: Path) -> None:
    signature = {"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 4]}], "outputs": []}
    header = {
        "__metadata__": {"signature": json.dumps(signature)},
        "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
    }
    path = write_raw_safetensors(tmp_path / "s.safetensors", header, bytes(16))
    ins = inspect_model(path)
    assert ins.signature.inputs[0].name == "x"
    assert ins.signature.inputs[0].shape == [-1, 4]


def test_reads_only_the_header_of_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "large.safetensors"
    n = 50_000_000  # 200 MB of float32, never written: the file is sparse
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 4 * n)
    started = time.perf_counter()
    ins = inspect_model(path)
    assert time.perf_counter() - started < 0.1
    assert ins.parameters == n


def _valid(tmp_path: Path) -> Path:
    return save_numpy_safetensors(
        tmp_path / "model.safetensors", {"a": np.ones((64, 64), np.float32), "b": np.ones(64)}
    )


def test_truncated_file(tmp_path: Path) -> None:
    path = _valid(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match=r"^model\.safetensors is not a valid safetensors file"):
        inspect_model(path)


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(np.random.default_rng(1).bytes(256))
    with pytest.raises(InvalidInput, match="header length"):
        inspect_model(path)


def test_header_length_huge(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b'{"a": 1}')
    with pytest.raises(InvalidInput, match="exceeds the file size"):
        inspect_model(path)


def test_header_not_json(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    body = b"{this is not json}"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    with pytest.raises(InvalidInput, match="not valid JSON"):
        inspect_model(path)


@pytest.mark.parametrize(
    ("header", "data", "problem"),
    [
        ({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, 16, "beyond"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, 12, "needs 16"),
        (
            {
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
            },
            24,
            "overlaps",
        ),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [4, 20]}}, 20, "gap"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 20, "cover 16 bytes"),
        ({"w": {"dtype": "Q7", "shape": [4], "data_offsets": [0, 16]}}, 16, "unknown dtype"),
        ({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, 16, "shape"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, 16, "data_offsets"),
        ({"w": [1, 2]}, 0, "not a JSON object"),
    ],
)
def test_inconsistent_headers(
    tmp_path: Path, header: dict[str, object], data: int, problem: str
) -> None:
    path = write_raw_safetensors(tmp_path / "bad.safetensors", header, bytes(data))
    with pytest.raises(InvalidInput, match=problem):
        inspect_model(path)


@pytest.mark.parametrize("header_len", [0x178, 0x5E78, 0x9C78, 0xDA78, 0x0280, 0x0380])
def test_header_lengths_that_look_like_other_magic_numbers(tmp_path: Path, header_len: int) -> None:
    """The length's low bytes can read as zlib (0x78 0x9C) or pickle (0x80 0x02) magic."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    header += b" " * (header_len - len(header))
    path = write_raw_safetensors(tmp_path / "w.safetensors", {}, b"")
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    result = inspect_model(path)
    assert result.framework == Framework.SAFETENSORS and result.parameters == 4
