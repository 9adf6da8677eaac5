"""Latency sketches: ddsketch's DDSketch at 1 % relative accuracy, encoded with its
protobuf form so minutes travel from replicas and sit in the store as bytes.

The protobuf form stores bins contiguously (a double per bin, zeros included), so
the bytes are zlib-compressed: 2,000 latencies over three decades take under 1 KB."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable

from ddsketch import DDSketch
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from ddsketch.pb.proto import DDSketchProto
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from modelhub.errors import InvalidInput

RELATIVE_ACCURACY = 0.01


def new_sketch() -> DDSketch:
    return DDSketch(RELATIVE_ACCURACY)


def encode(sketch: DDSketch) -> bytes:
    """The sketch as bytes; an empty sketch is b""."""
    if sketch.count == 0:
        return b""
    message = DDSketchProto.to_proto(sketch)  # type: ignore[no-untyped-call]
    return zlib.compress(message.SerializeToString(), 6)


def decode(data: bytes) -> DDSketch:
    """A sketch from `encode`'s bytes (b"" is an empty sketch); InvalidInput if damaged."""
    if not data:
        return new_sketch()
    try:
        message = DDSketchMessage.FromString(zlib.decompress(data))
        sketch = DDSketchProto.from_proto(message)  # type: ignore[no-untyped-call]
    except (DecodeError, ValueError, KeyError, zlib.error) as exc:
        raise InvalidInput(f"a stored latency sketch does not decode: {exc}") from exc
    merged = new_sketch()
    merged.merge(sketch)  # the proto form drops count, min, max, sum: merge restores count
    return merged


def encode_text(sketch: DDSketch) -> str:
    return base64.b64encode(encode(sketch)).decode("ascii")


def decode_text(text: str) -> DDSketch:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidInput(f"a latency sketch is not base64: {exc}") from exc
    return decode(raw)


def merge_all(sketches: Iterable[DDSketch]) -> DDSketch:
    merged = new_sketch()
    for sketch in sketches:
        if sketch.count:
            merged.merge(sketch)
    return merged


def merge_encoded(parts: Iterable[bytes]) -> bytes:
    return encode(merge_all(decode(part) for part in parts if part))


def quantile(sketch: DDSketch, q: float) -> float | None:
    """The q-quantile, or None for an empty sketch."""
    if sketch.count == 0:
        return None
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)
