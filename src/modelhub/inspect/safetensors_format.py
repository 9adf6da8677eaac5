"""Read a safetensors header (never the tensor data) and check it describes the file exactly.

Layout: 8-byte little-endian header length N, N bytes of JSON, then the data region.
Each tensor names its dtype, shape and [begin, end) offsets into the data region; the
tensors must tile that region exactly, with no gap, overlap or byte left over.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection, Signature
from modelhub.inspect.bounded_json import JsonRefused, loads_bounded
from modelhub.inspect.sniff import invalid
from modelhub.inspect.tensors import TensorSummary

WHAT = "safetensors file"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library refuses bigger headers too
MAX_RANK = 64  # dimensions per tensor; real ones have at most a handful
MAX_U64 = 2**64 - 1  # the format stores shapes and offsets as u64

# Bits per element, so the sub-byte float formats are exact too.
_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
_NAMES: dict[str, str] = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "F16": "float16", "BF16": "bfloat16", "I32": "int32", "U32": "uint32",
    "F32": "float32", "I64": "int64", "U64": "uint64", "F64": "float64",
    "C64": "complex64", "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3",
    "F8_E8M0": "float8_e8m0", "F4": "float4", "F6_E2M3": "float6_e2m3",
    "F6_E3M2": "float6_e3m2",
}  # fmt: skip


@dataclass
class Header:
    """A checked safetensors header."""

    tensors: TensorSummary
    metadata: dict[str, str] = field(default_factory=dict)
    data_bytes: int = 0


def read_header(path: Path) -> Header:
    """Parse and validate the header of `path`; raise InvalidInput on any inconsistency."""
    size = path.stat().st_size
    if size < 8:
        raise invalid(path, WHAT, f"file is {size} bytes, shorter than the 8-byte header length")
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > size - 8:
            raise invalid(
                path, WHAT, f"header length {header_len} exceeds the file size {size} (truncated?)"
            )
        if header_len > MAX_HEADER_BYTES:
            raise invalid(path, WHAT, f"header length {header_len} is implausibly large")
        raw = f.read(header_len)
    try:
        header = loads_bounded(raw)
    except JsonRefused as exc:
        raise invalid(path, WHAT, f"header {exc}") from exc
    if not isinstance(header, dict):
        raise invalid(path, WHAT, "header is not a JSON object")
    data_bytes = size - 8 - header_len
    metadata = _metadata(path, header.pop("__metadata__", None))
    return Header(_tensors(path, header, data_bytes), metadata, data_bytes)


def _metadata(path: Path, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid(path, WHAT, "__metadata__ is not a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def _tensors(path: Path, header: dict[str, Any], data_bytes: int) -> TensorSummary:
    summary = TensorSummary()
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        dtype, shape, begin, end = _entry(path, name, entry)
        nbits = math.prod(shape) * _BITS[dtype]
        if nbits % 8 or end - begin != nbits // 8:
            raise invalid(
                path,
                WHAT,
                f"tensor {name!r} spans {end - begin} bytes but {dtype}{list(shape)} "
                f"needs {nbits / 8:g}",
            )
        if end > data_bytes:
            raise invalid(
                path,
                WHAT,
                f"tensor {name!r} ends at byte {end} beyond the {data_bytes}-byte data region "
                "(truncated?)",
            )
        spans.append((begin, end, name))
        summary.add(name, _NAMES[dtype], shape)
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else "leaves a gap"
            raise invalid(path, WHAT, f"tensor {name!r} at offset {begin} {problem}")
        position = end
    if position != data_bytes:
        raise invalid(
            path,
            WHAT,
            f"tensors cover {position} bytes but the data region is {data_bytes} bytes",
        )
    return summary


def _entry(path: Path, name: str, entry: Any) -> tuple[str, list[int], int, int]:
    if not isinstance(entry, dict):
        raise invalid(path, WHAT, f"entry {name!r} is not a JSON object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _BITS:
        raise invalid(path, WHAT, f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(_natural(d) for d in shape):
        raise invalid(path, WHAT, f"tensor {name!r} has a malformed shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_natural(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise invalid(path, WHAT, f"tensor {name!r} has malformed data_offsets {offsets!r}")
    return dtype, shape, offsets[0], offsets[1]


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_U64


def inspect_safetensors(path: Path) -> Inspection:
    """Inspect one .safetensors file from its header alone."""
    header = read_header(path)
    summary = header.tensors
    precision, precision_details = summary.precision()
    details: dict[str, Any] = {"format": "safetensors", **precision_details}
    if header.metadata:
        details["metadata"] = header.metadata
    signature = _signature_from_metadata(header.metadata, details)
    return Inspection(
        framework=Framework.SAFETENSORS,
        architecture=summary.architecture(),
        parameters=summary.parameters,
        precision=precision,
        dtypes=dict(summary.params_by_dtype),
        tensor_count=summary.tensor_count,
        signature=signature,
        details=details,
    )


def _signature_from_metadata(metadata: dict[str, str], details: dict[str, Any]) -> Signature:
    """safetensors carries no signature; honour one stored as JSON under "signature"."""
    raw = metadata.get("signature")
    if raw is None:
        return Signature()
    try:
        return Signature.model_validate_json(raw)
    except ValidationError:
        details["signature_ignored"] = "metadata 'signature' is not a valid signature"
        return Signature()
