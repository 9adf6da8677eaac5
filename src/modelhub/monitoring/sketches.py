"""Latency sketches: ddsketch's DDSketch at 1 % relative accuracy, and its store bins
as compact bytes, so minutes travel from replicas and sit in the store.

Replicas add latencies to a DDSketch. What travels and is stored is the sketch's
bins (ddsketch's protobuf form gives them: an index offset and contiguous counts),
trimmed of empty bins at both ends and packed little-endian:

    version u8 | count width u8 (2, 4 or 8 = float64) | zero count f64 |
    positive offset i32 | positive length u32 | negative offset i32 | negative length u32 |
    positive counts | negative counts

Merging sketches is adding their bins key by key, which numpy does for thousands of
stored sketches at once (`BinSum`); quantiles read the summed bins exactly as
DDSketch.get_quantile_value does and map keys to values with ddsketch's own mapping,
so a summary over a week of hours equals the merged DDSketch's answer.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.proto import DDSketchProto

from modelhub.errors import InvalidInput

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
FORMAT = 1
HEADER = struct.Struct("<BBdiIiI")
WIDTHS: dict[int, np.dtype[Any]] = {2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<f8")}


def new_sketch() -> DDSketch:
    return DDSketch(RELATIVE_ACCURACY)


@dataclass
class Bins:
    """A sketch's counts: `positive[i]` is the count of key `positive_offset + i`."""

    zero: float
    positive_offset: int
    positive: np.ndarray
    negative_offset: int
    negative: np.ndarray

    @property
    def count(self) -> float:
        return float(self.zero + self.positive.sum() + self.negative.sum())


def _trimmed(offset: int, counts: np.ndarray) -> tuple[int, np.ndarray]:
    nonzero = np.flatnonzero(counts)
    if nonzero.size == 0:
        return 0, counts[:0]
    return offset + int(nonzero[0]), counts[nonzero[0] : nonzero[-1] + 1]


def bins_of(sketch: DDSketch) -> Bins:
    message = DDSketchProto.to_proto(sketch)  # type: ignore[no-untyped-call]
    positive = _trimmed(
        message.positiveValues.contiguousBinIndexOffset,
        np.asarray(message.positiveValues.contiguousBinCounts, dtype=np.float64),
    )
    negative = _trimmed(
        message.negativeValues.contiguousBinIndexOffset,
        np.asarray(message.negativeValues.contiguousBinCounts, dtype=np.float64),
    )
    return Bins(float(message.zeroCount), positive[0], positive[1], negative[0], negative[1])


def pack(bins: Bins) -> bytes:
    """The bins as bytes; no counts at all is b""."""
    if bins.count == 0:
        return b""
    both = np.concatenate([bins.positive, bins.negative])
    if np.all(both == np.floor(both)) and both.max(initial=0) < 2**32:
        width = 2 if both.max(initial=0) < 2**16 else 4
    else:
        width = 8
    header = HEADER.pack(
        FORMAT,
        width,
        bins.zero,
        bins.positive_offset,
        bins.positive.size,
        bins.negative_offset,
        bins.negative.size,
    )
    return header + bytes(both.astype(WIDTHS[width]).tobytes())


def unpack(data: bytes) -> Bins:
    """Bins from `pack`'s bytes (b"" has none); InvalidInput when they are damaged."""
    if not data:
        return Bins(0.0, 0, np.zeros(0), 0, np.zeros(0))
    try:
        version, width, zero, p_offset, p_size, n_offset, n_size = HEADER.unpack_from(data)
        dtype = WIDTHS[width]
        if version != FORMAT or len(data) != HEADER.size + (p_size + n_size) * dtype.itemsize:
            raise ValueError("wrong format or length")
    except (struct.error, KeyError, ValueError) as exc:
        raise InvalidInput(f"a stored latency sketch does not decode: {exc}") from exc
    counts = np.frombuffer(data, dtype=dtype, offset=HEADER.size).astype(np.float64)
    return Bins(zero, p_offset, counts[:p_size], n_offset, counts[p_size:])


def encode(sketch: DDSketch) -> bytes:
    """The sketch as bytes; an empty sketch is b""."""
    return pack(bins_of(sketch)) if sketch.count else b""


def sketch_of(bins: Bins) -> DDSketch:
    """A DDSketch holding exactly these bins (each bin's count added at its key's value)."""
    sketch = new_sketch()
    for offset, counts, sign in (
        (bins.positive_offset, bins.positive, 1.0),
        (bins.negative_offset, bins.negative, -1.0),
    ):
        for index in np.flatnonzero(counts):
            sketch.add(sign * MAPPING.value(offset + int(index)), float(counts[index]))
    if bins.zero:
        sketch.add(0.0, bins.zero)
    return sketch


def decode(data: bytes) -> DDSketch:
    """A sketch from `encode`'s bytes (b"" is an empty sketch); InvalidInput if damaged."""
    return sketch_of(unpack(data))


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


def quantile(sketch: DDSketch, q: float) -> float | None:
    """The q-quantile, or None for an empty sketch."""
    if sketch.count == 0:
        return None
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)


class BinSum:
    """Many packed sketches summed per cell (cells: e.g. a minute and a version), in
    numpy; `cells(...)` sums cells together, `quantile` reads a summed row."""

    def __init__(self, parts: list[bytes], cell_of: list[int], cells: int) -> None:
        # Per sketch only its header is read in Python and its counts' bytes are
        # collected; the counts of all of them are read by one np.frombuffer per count
        # width and summed into their cells by one np.bincount per store.
        positive = _Runs()
        negative = _Runs()
        self.zero = np.zeros(cells)
        size = HEADER.size
        for part, cell in zip(parts, cell_of, strict=True):
            if not part:
                continue
            if len(part) < size:
                raise InvalidInput("a stored latency sketch does not decode: too short")
            version, width, zero, p_offset, p_size, n_offset, n_size = HEADER.unpack_from(part)
            if version != FORMAT or width not in WIDTHS:
                raise InvalidInput("a stored latency sketch does not decode: wrong format")
            if len(part) != size + (p_size + n_size) * width:
                raise InvalidInput("a stored latency sketch does not decode: wrong length")
            if n_size:
                middle = size + p_size * width
                negative.add(width, cell, n_offset, n_size, part[middle:])
                if p_size:
                    positive.add(width, cell, p_offset, p_size, part[size:middle])
            elif p_size:
                positive.add(width, cell, p_offset, p_size, part[size:])
            if zero:
                self.zero[cell] += zero
        self.p_low, self.positive = positive.summed(cells)
        self.n_low, self.negative = negative.summed(cells)

    def bins(self, cells: Iterable[int] | None = None) -> Bins:
        """The bins of the given cells summed (all cells when None)."""
        rows = slice(None) if cells is None else list(cells)
        return Bins(
            float(self.zero[rows].sum()),
            self.p_low,
            self.positive[rows].sum(axis=0),
            self.n_low,
            self.negative[rows].sum(axis=0),
        )


class _Runs:
    """Runs of counts (cell, first key, length) collected by count width."""

    def __init__(self) -> None:
        self.by_width: dict[int, tuple[list[tuple[int, int, int]], list[bytes]]] = {}

    def add(self, width: int, cell: int, offset: int, size: int, data: bytes) -> None:
        runs, chunks = self.by_width.setdefault(width, ([], []))
        runs.append((cell, offset, size))
        chunks.append(data)

    def summed(self, cells: int) -> tuple[int, np.ndarray]:
        """(lowest key, cells x keys array) with each run's counts added at its keys."""
        if not self.by_width:
            return 0, np.zeros((cells, 0))
        tables = {w: np.asarray(runs, dtype=np.int64) for w, (runs, _) in self.by_width.items()}
        low = min(int(t[:, 1].min()) for t in tables.values())
        width = max(int((t[:, 1] + t[:, 2]).max()) for t in tables.values()) - low
        summed = np.zeros(cells * width)
        for count_width, (_, chunks) in self.by_width.items():
            table = tables[count_width]
            cell, offset, size = table[:, 0], table[:, 1], table[:, 2]
            run_start = np.cumsum(size) - size
            flat = np.repeat(cell * width + (offset - low) - run_start, size)
            flat += np.arange(int(size.sum()))
            weights = np.frombuffer(b"".join(chunks), dtype=WIDTHS[count_width])
            summed += np.bincount(flat, weights=weights, minlength=cells * width)
        return low, summed.reshape(cells, width)


def bins_quantile(bins: Bins, q: float) -> float | None:
    """DDSketch.get_quantile_value over summed bins: the same rank rule, keys mapped
    to values by ddsketch's mapping. None when there are no counts."""
    negative_count = float(bins.negative.sum())
    count = bins.zero + negative_count + float(bins.positive.sum())
    if count == 0 or not 0 <= q <= 1:
        return None
    rank = q * (count - 1)
    if rank < negative_count:
        reversed_rank = negative_count - rank - 1
        cumulative = np.cumsum(bins.negative)
        index = int(np.searchsorted(cumulative, reversed_rank + 1, side="left"))
        index = min(index, bins.negative.size - 1)
        return float(-MAPPING.value(bins.negative_offset + index))
    if rank < bins.zero + negative_count:
        return 0.0
    cumulative = np.cumsum(bins.positive)
    index = int(np.searchsorted(cumulative, rank - bins.zero - negative_count, side="right"))
    index = min(index, bins.positive.size - 1)
    return float(MAPPING.value(bins.positive_offset + index))


def merge_encoded(parts: Iterable[bytes]) -> bytes:
    """Packed sketches merged into one packed sketch, without building DDSketches."""
    items = [part for part in parts if part]
    if not items:
        return b""
    if len(items) == 1:
        return items[0]
    total = BinSum(items, [0] * len(items), 1).bins()
    p_offset, positive = _trimmed(total.positive_offset, total.positive)
    n_offset, negative = _trimmed(total.negative_offset, total.negative)
    return pack(Bins(total.zero, p_offset, positive, n_offset, negative))
