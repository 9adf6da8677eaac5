from __future__ import annotations

import pytest

from modelhub.domain.enums import Precision
from modelhub.inspect.resources import GiB, estimate
from modelhub.inspect.tensors import guess_architecture, precision_of


@pytest.mark.parametrize(
    ("parameters", "precision", "device_class"),
    [
        (22_700_000, Precision.FP32, "cpu-small"),
        (350_000_000, Precision.FP32, "cpu-large"),
        (1_000_000_000, Precision.FP32, "gpu-16gb"),
        (13_000_000_000, Precision.FP16, "gpu-40gb"),
        (5_000_000_000, Precision.INT4, "cpu-large"),
        (30_000_000_000, Precision.FP16, "gpu-80gb"),
        (70_000_000_000, Precision.FP16, "multi-gpu"),
    ],
)
def test_device_class(parameters: int, precision: Precision, device_class: str) -> None:
    result = estimate(parameters, precision)
    assert result.device_class == device_class
    assert precision.value in result.notes


def test_memory_formula() -> None:
    result = estimate(1_000_000, Precision.FP16)
    assert result.memory_bytes == int(2_000_000 * 1.2) + 200 * 1024**2


def test_unknown_parameters_use_file_size() -> None:
    result = estimate(None, Precision.UNKNOWN, file_bytes=10 * GiB)
    assert result.device_class == "gpu-16gb"
    assert "file size" in result.notes


@pytest.mark.parametrize(
    ("names", "family"),
    [
        (["bert.encoder.layer.0.attention.self.query.weight"], "bert"),
        (["model.layers.11.self_attn.q_proj.weight"], "llama"),
        (["transformer.h.3.attn.c_attn.weight"], "gpt2"),
        (["encoder.block.0.layer.0.SelfAttention.q.weight"], "t5"),
        (["blocks.0.attn.qkv.weight"], "transformer"),
        (["features.conv1.weight"], "cnn"),
        (["layers.0.weight", "layers.0.bias", "layers.1.weight"], "mlp"),
        (["embeddings.weight"], None),
        ([], None),
    ],
)
def test_guess_architecture(names: list[str], family: str | None) -> None:
    shapes = {name: (4, 4) for name in names}
    assert guess_architecture(shapes) == family


def test_conv_kernels_by_shape() -> None:
    assert guess_architecture({"0.weight": (8, 3, 3, 3), "0.bias": (8,)}) == "cnn"


def test_precision_ignores_integer_buffers() -> None:
    assert precision_of({"float32": 1000, "int64": 512}) == (Precision.FP32, {})
    assert precision_of({"int64": 5}) == (Precision.UNKNOWN, {})
