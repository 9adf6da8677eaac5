"""Tell a model file's format from its first bytes, and say so when its name lies."""

from __future__ import annotations

import struct
from enum import StrEnum
from pathlib import Path

from modelhub.errors import InvalidInput


class Kind(StrEnum):
    SAFETENSORS = "safetensors"
    ONNX = "onnx"
    TORCH_ZIP = "torch_zip"
    PICKLE = "pickle"
    COMPRESSED = "compressed"
    UNKNOWN = "unknown"


# What each extension promises, and the words used when the content breaks the promise.
EXPECTED_BY_SUFFIX: dict[str, tuple[frozenset[Kind], str]] = {
    ".safetensors": (frozenset({Kind.SAFETENSORS}), "safetensors file"),
    ".onnx": (frozenset({Kind.ONNX}), "ONNX model"),
    ".pt": (frozenset({Kind.TORCH_ZIP, Kind.PICKLE}), "PyTorch file"),
    ".pth": (frozenset({Kind.TORCH_ZIP, Kind.PICKLE}), "PyTorch file"),
    ".bin": (frozenset({Kind.TORCH_ZIP, Kind.PICKLE}), "PyTorch file"),
    ".ckpt": (frozenset({Kind.TORCH_ZIP, Kind.PICKLE}), "PyTorch file"),
    ".pkl": (frozenset({Kind.PICKLE}), "pickle"),
    ".pickle": (frozenset({Kind.PICKLE}), "pickle"),
    ".joblib": (frozenset({Kind.PICKLE}), "pickle"),
}

_HEAD = 16


def invalid(path: Path, what: str, problem: str) -> InvalidInput:
    """The one-line error for a file that is not what it should be."""
    return InvalidInput(
        f"{path.name} is not a valid {what}: {problem}",
        {"path": str(path), "problem": problem},
    )


def sniff(path: Path) -> Kind:
    """Guess the format from the content only; cheap (reads a few bytes)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(_HEAD)
    # safetensors first: its first bytes are a length, whose low bytes can look
    # like any magic number below (0x78 0x9C is zlib's, 0x80 0x02 a pickle's).
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len <= size - 8 and head[8:9] == b"{":
            return Kind.SAFETENSORS
    if head.startswith(b"PK\x03\x04"):
        return Kind.TORCH_ZIP
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Kind.PICKLE
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")) or (
        len(head) >= 2 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA)
    ):
        return Kind.COMPRESSED
    # ModelProto starts with field 1 (ir_version) as a varint: tag byte 0x08.
    if head[:1] == b"\x08":
        return Kind.ONNX
    return Kind.UNKNOWN


def describe(kind: Kind) -> str:
    return {
        Kind.SAFETENSORS: "its content is a safetensors file",
        Kind.ONNX: "its content looks like an ONNX protobuf",
        Kind.TORCH_ZIP: "its content is a zip archive",
        Kind.PICKLE: "its content is a Python pickle",
        Kind.COMPRESSED: "its content is compressed (gzip/zlib/bz2/xz/zstd)",
        Kind.UNKNOWN: "its content is not a recognised model format",
    }[kind]
