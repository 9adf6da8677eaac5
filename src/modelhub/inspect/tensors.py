"""What a list of named tensors says about a model: precision and architecture.

Shared by every format that exposes tensor names, shapes and dtypes (safetensors,
torch state dicts, ONNX initializers), so they all answer the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelhub.domain.enums import Precision

# Normalised dtype name (numpy style) -> the precision it stands for. Integer types wider
# than 8 bits (position ids, token type ids, counters) say nothing about weight precision.
PRECISION_BY_DTYPE: dict[str, Precision] = {
    "float32": Precision.FP32,
    "float16": Precision.FP16,
    "bfloat16": Precision.BF16,
    "int8": Precision.INT8,
    "uint8": Precision.INT8,
    "int4": Precision.INT4,
    "uint4": Precision.INT4,
}

BYTES_PER_PARAM: dict[Precision, float] = {
    Precision.FP32: 4.0,
    Precision.FP16: 2.0,
    Precision.BF16: 2.0,
    Precision.INT8: 1.0,
    Precision.INT4: 0.5,
    Precision.MIXED: 2.0,
    Precision.UNKNOWN: 4.0,
}


@dataclass
class TensorSummary:
    """Running totals over the tensors of one or more weight files."""

    tensor_count: int = 0
    parameters: int = 0
    params_by_dtype: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def add(self, name: str, dtype: str, shape: Sequence[int]) -> None:
        count = math.prod(shape)
        self.tensor_count += 1
        self.parameters += count
        self.params_by_dtype[dtype] = self.params_by_dtype.get(dtype, 0) + count
        self.shapes[name] = tuple(shape)

    def merge(self, other: TensorSummary) -> None:
        self.tensor_count += other.tensor_count
        self.parameters += other.parameters
        for dtype, count in other.params_by_dtype.items():
            self.params_by_dtype[dtype] = self.params_by_dtype.get(dtype, 0) + count
        self.shapes.update(other.shapes)

    def precision(self) -> tuple[Precision, dict[str, Any]]:
        """The dominant precision by parameter count, and details when it is mixed."""
        return precision_of(self.params_by_dtype)

    def architecture(self) -> str | None:
        return guess_architecture(self.shapes)


def precision_of(params_by_dtype: Mapping[str, int]) -> tuple[Precision, dict[str, Any]]:
    """Pick the precision holding most parameters; report the split when there are several."""
    totals: dict[Precision, int] = {}
    for dtype, count in params_by_dtype.items():
        precision = PRECISION_BY_DTYPE.get(dtype)
        if precision is not None:
            totals[precision] = totals.get(precision, 0) + count
    if not totals:
        return Precision.UNKNOWN, {}
    dominant = max(totals, key=lambda p: totals[p])
    if len(totals) == 1:
        return dominant, {}
    split = {p.value: n for p, n in sorted(totals.items(), key=lambda kv: -kv[1])}
    return dominant, {"mixed_precision": split}


_ARCHITECTURE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("bert", re.compile(r"encoder\.layer\.\d+\.attention\.self\.query")),
    ("vit", re.compile(r"encoder\.layer\.\d+\.attention\.attention\.query")),
    ("llama", re.compile(r"layers\.\d+\.self_attn\.q_proj")),
    ("gpt2", re.compile(r"(^|\.)h\.\d+\.attn\.c_attn")),
    ("t5", re.compile(r"block\.\d+\.layer\.\d+\.SelfAttention\.q")),
]
_ATTENTION = re.compile(r"attn|attention", re.IGNORECASE)
_CONV = re.compile(r"(^|[._])conv", re.IGNORECASE)
_EMBEDDING = re.compile(r"embed", re.IGNORECASE)


def guess_architecture(shapes: Mapping[str, Sequence[int]]) -> str | None:
    """Guess a model family from tensor names (and shapes, for conv kernels).

    A guess only: it names the family a checkpoint most resembles, never proves it.
    """
    names: Iterable[str] = shapes.keys()
    for family, pattern in _ARCHITECTURE_PATTERNS:
        if any(pattern.search(name) for name in names):
            return family
    if not shapes:
        return None
    if any(_ATTENTION.search(name) for name in names):
        return "transformer"
    if any(_CONV.search(name) or len(shape) == 4 for name, shape in shapes.items()):
        return "cnn"
    if all(len(shape) <= 2 for shape in shapes.values()) and not any(
        _EMBEDDING.search(name) for name in names
    ):
        return "mlp"
    return None
