"""The four preprocessing steps, each changing a Table in place and saying what it did.

A step returns JSON-ready details for the run's record: what it removed, and the
statistics a trainer or a model server needs to treat new data the same way (the
mean and std, or min and max, used by normalize). A step that cannot go on raises
StepFailed; the caller adds which step it was. docs/pipelines.md says the same in words.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from modelhub.datasets.table import Table
from modelhub.domain.pipelines import Dedupe, Filter, Normalize, PreprocessingStep, Tokenize

TOKEN = re.compile(r"\w+|[^\w\s]")  # a run of letters/digits/_, or one punctuation mark
UNKNOWN = "<unk>"

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class StepFailed(Exception):
    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def apply_step(table: Table, step: PreprocessingStep) -> dict[str, Any]:
    if isinstance(step, Tokenize):
        return tokenize(table, step)
    if isinstance(step, Normalize):
        return normalize(table, step)
    if isinstance(step, Dedupe):
        return dedupe(table, step)
    return filter_rows(table, step)


def tokenize(table: Table, spec: Tokenize) -> dict[str, Any]:
    token_rows: dict[int, list[str]] = {}
    tokens_truncated = rows_truncated = 0
    for index, row in enumerate(table.rows):
        text = row.get(spec.column)
        if text is None:
            continue
        if not isinstance(text, str):
            raise _failed(table, index, spec.column, f"holds {_describe(text)}, not text")
        tokens = TOKEN.findall(text.lower() if spec.lowercase else text)
        if len(tokens) > spec.max_length:
            tokens_truncated += len(tokens) - spec.max_length
            rows_truncated += 1
            del tokens[spec.max_length :]
        token_rows[index] = tokens
    counts = Counter(token for tokens in token_rows.values() for token in tokens)
    unknown = 0
    if spec.vocab_size is not None and len(counts) > spec.vocab_size - 1:
        known = {token for token, _ in counts.most_common(spec.vocab_size - 1)}
        unknown = sum(n for token, n in counts.items() if token not in known)
        for tokens in token_rows.values():
            tokens[:] = [t if t in known else UNKNOWN for t in tokens]
        counts = Counter({token: counts[token] for token in known} | {UNKNOWN: unknown})
    for index, tokens in token_rows.items():
        table.rows[index][spec.column] = " ".join(tokens)
    total = sum(len(tokens) for tokens in token_rows.values())
    return {
        "column": spec.column,
        "rows_tokenized": len(token_rows),
        "vocabulary_size": len(counts),
        "unknown_tokens": unknown,
        "tokens_truncated": tokens_truncated,
        "rows_truncated": rows_truncated,
        "mean_tokens": total / len(token_rows) if token_rows else 0.0,
    }


def normalize(table: Table, spec: Normalize) -> dict[str, Any]:
    columns = list(dict.fromkeys(spec.columns)) if spec.columns else _numeric_columns(table)
    if not columns:
        raise StepFailed(
            f"{table.name} has no numeric column to normalize", {"columns": table.columns}
        )
    used: dict[str, dict[str, float]] = {}
    for column in columns:
        values = _numbers(table, column)
        low, high = min(values.values()), max(values.values())
        # Work on values divided by a power of two near the largest magnitude (exact, so
        # ordinary data gives the same bits), so that no sum, difference or square of
        # finite numbers up to 1.8e308 overflows to inf or nan.
        scale = math.ldexp(1.0, math.frexp(max(abs(low), abs(high)))[1] - 1)
        if spec.method == "minmax":
            span = high / scale - low / scale
            for index, x in values.items():
                table.rows[index][column] = (x / scale - low / scale) / span if span else 0.0
            used[column] = {"min": low, "max": high}
        else:
            scaled = [x / scale for x in values.values()]
            mean = low if low == high else math.fsum(scaled) / len(scaled) * scale
            center = mean / scale
            spread = math.sqrt(math.fsum((x - center) ** 2 for x in scaled) / len(scaled))
            std = spread * scale
            for index, x in values.items():
                table.rows[index][column] = (x / scale - center) / spread if spread else x - mean
            used[column] = {"mean": mean, "std": std}
        table.float_columns.add(column)
    return {"method": spec.method, "columns": used}


def dedupe(table: Table, spec: Dedupe) -> dict[str, Any]:
    columns = spec.columns or table.columns
    order = range(len(table.rows))
    seen: set[tuple[Any, ...]] = set()
    kept: list[int] = []
    for index in order if spec.keep == "first" else reversed(order):
        try:
            key = tuple(_hashable(table.rows[index].get(c)) for c in columns)
        except RecursionError:  # JSON lines nest <= 64 levels, Parquet <= 100: a backstop
            raise _failed(table, index, "*", "holds a value nested too deeply") from None
        if key not in seen:
            seen.add(key)
            kept.append(index)
    removed = len(table.rows) - len(kept)
    table.keep(sorted(kept))
    return {"columns": spec.columns, "keep": spec.keep, "removed": removed}


def filter_rows(table: Table, spec: Filter) -> dict[str, Any]:
    kept = [index for index in range(len(table.rows)) if _holds(table, index, spec)]
    removed = len(table.rows) - len(kept)
    table.keep(kept)
    return {"column": spec.column, "op": spec.op, "value": spec.value, "removed": removed}


def _holds(table: Table, index: int, spec: Filter) -> bool:
    cell = table.rows[index].get(spec.column)
    if spec.op == "not_null":
        return cell is not None
    if cell is None:
        return spec.op in ("!=", "not_in")
    if spec.op in ("in", "not_in"):
        # every listed value is compared, so a mismatched kind fails on the first row
        matches = [_compare(table, index, spec, cell, "==", v) for v in spec.value if v is not None]
        return any(matches) == (spec.op == "in")
    return _compare(table, index, spec, cell, spec.op, spec.value)


def _compare(table: Table, index: int, spec: Filter, cell: Any, op: str, value: Any) -> bool:
    kind = _kind(cell)
    if kind is None or kind != _kind(value):
        problem = f"holds {_describe(cell)}, which cannot be compared with {_describe(value)}"
        raise _failed(table, index, spec.column, problem)
    return COMPARE[op](cell, value)


def _numeric_columns(table: Table) -> list[str]:
    """Columns whose present values are all numbers (true/false is not a number)."""
    numeric = []
    for column in table.columns:
        kinds = {_kind(row[column]) for row in table.rows if row.get(column) is not None}
        if kinds == {"number"}:
            numeric.append(column)
    return numeric


def _numbers(table: Table, column: str) -> dict[int, float]:
    """The column's present values by row index; anything but finite numbers fails."""
    values: dict[int, float] = {}
    for index, row in enumerate(table.rows):
        value = row.get(column)
        if value is None:
            continue
        if _kind(value) != "number":
            raise _failed(table, index, column, f"holds {_describe(value)}, not a number")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            number = math.inf
        if not math.isfinite(number):
            raise _failed(table, index, column, f"holds {_describe(value)}, not a finite number")
        values[index] = number
    if not values:
        raise StepFailed(f"column {column!r} holds no numbers", {"column": column})
    return values


def _kind(value: Any) -> str | None:
    """number, text or bool; None for anything else, which no filter compares."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else None


def _describe(value: Any) -> str:
    kind = {"number": "the number", "text": "the text", "bool": "the value"}.get(
        _kind(value) or "", f"a {type(value).__name__}"
    )
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def _hashable(value: Any) -> Any:
    """A key for dedupe: lists and objects compare by content; true is not 1."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, list | tuple):
        return ("list", tuple(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _hashable(v)) for k, v in value.items())))
    return value


def _failed(table: Table, index: int, column: str, problem: str) -> StepFailed:
    where = table.where(index)
    return StepFailed(
        f"column {column!r} at {where} {problem}",
        {"column": column, table.unit: table.lines[index]},
    )
