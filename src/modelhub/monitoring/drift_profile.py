"""A version's reference profile: what its data looked like, small enough to store.

A profile keeps, per column, what the drift tests need and no more:

- numeric: a bounded random sample (the "reservoir": all values when the column
  is small), decile bin edges with the share of values in each bin (for PSI), the
  standard deviation (to normalise Wasserstein) and the row count;
- categorical (strings, booleans, and numbers with at most five distinct values,
  as Evidently decides): the count of each value, the rarest folded into one bucket;
- text: the length distribution (a numeric profile) and a sample of embeddings;
- vector (an embedding or any fixed-width numeric row): a sample of rows.

Text is embedded without a model: hashed character trigrams and words, signed and
L2-normalised (`embed_text`). That is deterministic, needs nothing downloaded, and
moves when the vocabulary (the topic) moves, which is what a drift test asks of it.

Profiles serialise to JSON (`profile_to_json` / `profile_from_json`) so the service
can keep them as content-addressed artifacts.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from modelhub.domain.drift import FeatureKind
from modelhub.errors import InvalidInput

FORMAT = "modelhub.drift-profile"
FORMAT_VERSION = 1
OTHER = "<other>"
CATEGORICAL_MAX_DISTINCT = 5  # numbers with this few distinct values are categories
EMBEDDING_DIM = 256
_WORD = re.compile(r"\w+")

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProfileConfig:
    sample_size: int = 5000  # numeric values kept per column
    vector_sample: int = 500  # embedding rows kept per text or vector column
    max_categories: int = 1000  # distinct values kept per categorical column
    seed: int = 0


@dataclass
class NumericProfile:
    rows: int
    missing: int
    std: float
    sample: Floats
    edges: Floats  # inner decile edges: len(shares) - 1 of them
    shares: Floats
    kind: FeatureKind = FeatureKind.NUMERIC


@dataclass
class CategoricalProfile:
    rows: int
    missing: int
    counts: dict[str, int]
    kind: FeatureKind = FeatureKind.CATEGORICAL


@dataclass
class TextProfile:
    rows: int
    missing: int
    lengths: NumericProfile
    embeddings: Floats  # (m, EMBEDDING_DIM)
    kind: FeatureKind = FeatureKind.TEXT


@dataclass
class VectorProfile:
    rows: int
    missing: int
    sample: Floats  # (m, width)
    kind: FeatureKind = FeatureKind.VECTOR


ColumnProfile = NumericProfile | CategoricalProfile | TextProfile | VectorProfile


@dataclass
class Profile:
    rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # column -> "input" | "output"


# -- reading columns ----------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def as_numbers(values: npt.NDArray[Any]) -> Floats | None:
    """The column as floats (NaN where missing), or None when it is not numeric."""
    if values.dtype.kind in "iuf":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind != "O":
        return None
    present = [v for v in values if not _missing(v)]
    if not present or any(isinstance(v, bool) or not isinstance(v, int | float) for v in present):
        return None
    return np.array([np.nan if _missing(v) else float(v) for v in values], dtype=np.float64)


def category_key(value: Any) -> str:
    """One spelling per value, the same for a reference file and a live request."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def category_counts(values: npt.NDArray[Any]) -> tuple[Counter[str], int]:
    keys = [category_key(v) for v in values if not _missing(v)]
    return Counter(keys), len(values) - len(keys)


def is_text(values: npt.NDArray[Any]) -> bool:
    """Free text rather than labels: mostly distinct strings of some length."""
    strings = [v for v in values if isinstance(v, str) and v]
    if not strings:
        return False
    distinct = len(set(strings)) / len(strings)
    mean_length = sum(len(s) for s in strings) / len(strings)
    return distinct > 0.5 and mean_length >= 10


def column_kind(values: npt.NDArray[Any]) -> FeatureKind:
    if values.ndim == 2:
        return FeatureKind.VECTOR
    numbers = as_numbers(values)
    if numbers is not None:
        present = numbers[~np.isnan(numbers)]
        distinct = np.unique(present[:100_000]).size
        return (
            FeatureKind.CATEGORICAL if distinct <= CATEGORICAL_MAX_DISTINCT else FeatureKind.NUMERIC
        )
    return FeatureKind.TEXT if is_text(values) else FeatureKind.CATEGORICAL


def embed_text(texts: list[str]) -> Floats:
    """Hashed, signed bag of character trigrams and words, L2-normalised per row."""
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float64)
    for row, text in enumerate(texts):
        lowered = text.lower()
        grams = [lowered[i : i + 3] for i in range(max(len(lowered) - 2, 0))]
        grams += [f"w:{w}" for w in _WORD.findall(lowered)]
        for gram in grams:
            code = zlib.crc32(gram.encode())
            out[row, code % EMBEDDING_DIM] += 1.0 if code & 0x80000000 else -1.0
        norm = float(np.linalg.norm(out[row]))
        if norm:
            out[row] /= norm
    return out


# -- building -------------------------------------------------------------------


def _subsample(count: int, keep: int, rng: np.random.Generator) -> npt.NDArray[np.intp]:
    if count <= keep:
        return np.arange(count)
    return np.sort(rng.choice(count, size=keep, replace=False))


def numeric_profile(values: Floats, config: ProfileConfig) -> NumericProfile:
    present = values[~np.isnan(values)]
    rng = np.random.default_rng(config.seed)
    sample = np.sort(present[_subsample(present.size, config.sample_size, rng)])
    edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9))) if present.size else present
    shares = bin_shares(present, edges)
    return NumericProfile(
        rows=int(present.size),
        missing=int(values.size - present.size),
        std=float(np.std(present)) if present.size else 0.0,
        sample=sample.astype(np.float64),
        edges=edges.astype(np.float64),
        shares=shares,
    )


def bin_shares(values: Floats, edges: Floats) -> Floats:
    """The share of `values` in each bin the inner `edges` cut the line into."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def _categorical_profile(values: npt.NDArray[Any], config: ProfileConfig) -> CategoricalProfile:
    counts, missing = category_counts(values)
    kept = dict(counts.most_common(config.max_categories))
    rest = sum(counts.values()) - sum(kept.values())
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return CategoricalProfile(rows=sum(counts.values()), missing=missing, counts=kept)


def _text_profile(values: npt.NDArray[Any], config: ProfileConfig) -> TextProfile:
    texts = [str(v) for v in values if not _missing(v)]
    lengths = numeric_profile(np.array([len(t) for t in texts], dtype=np.float64), config)
    rng = np.random.default_rng(config.seed)
    chosen = _subsample(len(texts), config.vector_sample, rng)
    return TextProfile(
        rows=len(texts),
        missing=len(values) - len(texts),
        lengths=lengths,
        embeddings=embed_text([texts[i] for i in chosen]),
    )


def _vector_profile(values: npt.NDArray[Any], config: ProfileConfig) -> VectorProfile:
    rows = np.asarray(values, dtype=np.float64)
    finite = rows[np.isfinite(rows).all(axis=1)]
    rng = np.random.default_rng(config.seed)
    return VectorProfile(
        rows=int(finite.shape[0]),
        missing=int(rows.shape[0] - finite.shape[0]),
        sample=finite[_subsample(finite.shape[0], config.vector_sample, rng)],
    )


def profile_column(values: npt.NDArray[Any], config: ProfileConfig) -> ColumnProfile:
    kind = column_kind(values)
    if kind is FeatureKind.VECTOR:
        return _vector_profile(values, config)
    if kind is FeatureKind.NUMERIC:
        numbers = as_numbers(values)
        assert numbers is not None  # column_kind said numeric
        return numeric_profile(numbers, config)
    if kind is FeatureKind.TEXT:
        return _text_profile(values, config)
    return _categorical_profile(values, config)


def build_profile(
    columns: dict[str, npt.NDArray[Any]],
    roles: dict[str, str] | None = None,
    config: ProfileConfig | None = None,
) -> Profile:
    """The profile of equally long columns; `roles` marks outputs (the rest are inputs)."""
    config = config or ProfileConfig()
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise InvalidInput("the columns to profile differ in length", {"lengths": sorted(lengths)})
    profile = Profile(rows=lengths.pop() if lengths else 0)
    for name, values in columns.items():
        profile.columns[name] = profile_column(np.asarray(values), config)
        profile.roles[name] = (roles or {}).get(name, "input")
    return profile


# -- JSON -------------------------------------------------------------------------


def _numeric_json(p: NumericProfile) -> dict[str, Any]:
    return {
        "kind": p.kind.value,
        "rows": p.rows,
        "missing": p.missing,
        "std": p.std,
        "sample": p.sample.tolist(),
        "edges": p.edges.tolist(),
        "shares": p.shares.tolist(),
    }


def _column_json(p: ColumnProfile) -> dict[str, Any]:
    if isinstance(p, NumericProfile):
        return _numeric_json(p)
    if isinstance(p, CategoricalProfile):
        return {"kind": p.kind.value, "rows": p.rows, "missing": p.missing, "counts": p.counts}
    if isinstance(p, TextProfile):
        return {
            "kind": p.kind.value,
            "rows": p.rows,
            "missing": p.missing,
            "lengths": _numeric_json(p.lengths),
            "embeddings": p.embeddings.tolist(),
        }
    return {"kind": p.kind.value, "rows": p.rows, "missing": p.missing, "sample": p.sample.tolist()}


def _numeric_from(data: dict[str, Any]) -> NumericProfile:
    return NumericProfile(
        rows=int(data["rows"]),
        missing=int(data["missing"]),
        std=float(data["std"]),
        sample=np.asarray(data["sample"], dtype=np.float64),
        edges=np.asarray(data["edges"], dtype=np.float64),
        shares=np.asarray(data["shares"], dtype=np.float64),
    )


def _column_from(data: dict[str, Any]) -> ColumnProfile:
    kind = FeatureKind(data["kind"])
    if kind is FeatureKind.NUMERIC:
        return _numeric_from(data)
    if kind is FeatureKind.CATEGORICAL:
        counts = {str(k): int(v) for k, v in data["counts"].items()}
        return CategoricalProfile(
            rows=int(data["rows"]), missing=int(data["missing"]), counts=counts
        )
    if kind is FeatureKind.TEXT:
        embeddings = np.asarray(data["embeddings"], dtype=np.float64).reshape(-1, EMBEDDING_DIM)
        return TextProfile(
            rows=int(data["rows"]),
            missing=int(data["missing"]),
            lengths=_numeric_from(data["lengths"]),
            embeddings=embeddings,
        )
    sample = np.asarray(data["sample"], dtype=np.float64)
    return VectorProfile(
        rows=int(data["rows"]), missing=int(data["missing"]), sample=sample.reshape(len(sample), -1)
    )


def profile_to_json(profile: Profile) -> bytes:
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rows": profile.rows,
        "roles": profile.roles,
        "columns": {name: _column_json(p) for name, p in profile.columns.items()},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def profile_from_json(data: bytes) -> Profile:
    """Raises InvalidInput when `data` is not a profile this version can read."""
    try:
        document = json.loads(data)
        if document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
            raise InvalidInput("not a drift profile this modelhub can read")
        columns = {name: _column_from(c) for name, c in document["columns"].items()}
        return Profile(rows=int(document["rows"]), columns=columns, roles=dict(document["roles"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"the drift profile does not parse: {exc}") from exc
