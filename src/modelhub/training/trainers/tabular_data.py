"""Read a tabular dataset (CSV, JSONL, Parquet) into feature and label arrays.

Every problem a user can fix (a missing column, text in a feature, NaN, one class)
is an `InvalidInput` that names the column, so the fix is obvious. The pieces
(`read_table`, `feature_columns`, `label_classes`, `table_arrays`) are public for the
federated runner, which reads one table and hands each client its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.errors import InvalidInput
from modelhub.networks.tabular import Label


@dataclass
class TabularData:
    features: list[str]
    label: str
    x: np.ndarray[Any, np.dtype[np.float32]]
    y: np.ndarray[Any, np.dtype[np.int64]]
    classes: list[Label]


def read_table(path: Path) -> Any:
    """The file as a pyarrow Table; InvalidInput when it cannot be read."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    readers = {".csv": pa_csv.read_csv, ".jsonl": pa_json.read_json, ".parquet": pq.read_table}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise InvalidInput(
            f"the tabular trainer reads .csv, .jsonl or .parquet, not {path.name}",
            {"path": str(path)},
        )
    try:
        return reader(path)
    except (pa.ArrowInvalid, OSError) as exc:
        if "Empty CSV file" in str(exc):
            raise InvalidInput(f"{path.name} is empty", {"path": str(path)}) from exc
        raise InvalidInput(f"cannot read {path.name}: {exc}", {"path": str(path)}) from exc


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_null(arrow_type)
    )


def _label_values(column: Any, name: str) -> list[Label]:
    import pyarrow as pa

    if column.null_count:
        raise InvalidInput(
            f"label column {name!r} has {column.null_count} empty values",
            {"column": name},
        )
    values = column.to_pylist()
    if pa.types.is_integer(column.type):
        return [int(v) for v in values]
    return [str(v) for v in values]


def split_rows(n: int, fraction: float, seed: int) -> tuple[Any, Any]:
    """(training, validation) row indices: a seeded shuffle, `fraction` of it held out."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(n * fraction)) if fraction > 0 and n > 1 else 0
    return order[n_val:], order[:n_val]


def feature_columns(table: Any, name: str, label: str, features: list[str] | None) -> list[str]:
    """The feature columns: `features` checked, or every numeric column but the label."""
    names = list(table.column_names)
    if label not in names:
        raise InvalidInput(
            f"label column {label!r} is not in {name}; columns: {', '.join(names)}",
            {"field": "label", "value": label},
        )
    schema = table.schema
    if features is None:
        features = [n for n in names if n != label and _is_numeric(schema.field(n).type)]
        if not features:
            raise InvalidInput(f"{name} has no numeric feature columns besides {label!r}")
        return features
    for column in features:
        if column not in names:
            raise InvalidInput(
                f"feature column {column!r} is not in {name}",
                {"field": "features", "value": column},
            )
        if column == label:
            raise InvalidInput(f"column {column!r} cannot be both a feature and the label")
        if not _is_numeric(schema.field(column).type):
            raise InvalidInput(
                f"feature column {column!r} is not numeric ({schema.field(column).type})",
                {"field": "features", "column": column},
            )
    return features


def label_classes(table: Any, label: str) -> list[Label]:
    """The label's distinct values, sorted; InvalidInput when fewer than 2 or any is empty."""
    classes: list[Label] = sorted(set(_label_values(table.column(label), label)))
    if len(classes) < 2:
        raise InvalidInput(
            f"label column {label!r} holds {len(classes)} class; a classifier needs at least 2",
            {"column": label, "classes": classes},
        )
    return classes


def table_arrays(
    table: Any, features: list[str], label: str, classes: list[Label]
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Features as float32 rows and labels as indices into `classes`.

    InvalidInput names a feature holding NaN, infinite or missing values, and a label
    value that is not one of `classes`.
    """
    columns = []
    for name in features:
        column = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        bad = ~np.isfinite(column)
        if bad.any():
            row = int(np.argmax(bad))
            raise InvalidInput(
                f"feature column {name!r} holds NaN, infinite or missing values "
                f"({int(bad.sum())} rows, first at row {row})",
                {"column": name, "row": row},
            )
        columns.append(column.astype(np.float32))
    index = {c: i for i, c in enumerate(classes)}
    labels = _label_values(table.column(label), label)
    unknown = next((v for v in labels if v not in index), None)
    if unknown is not None:
        raise InvalidInput(
            f"label column {label!r} holds {unknown!r}, not one of the classes",
            {"column": label, "value": str(unknown)},
        )
    y = np.array([index[v] for v in labels], dtype=np.int64)
    x = np.stack(columns, axis=1) if columns else np.empty((len(y), 0), dtype=np.float32)
    return x, y


def load_tabular(path: Path, label: str, features: list[str] | None) -> TabularData:
    """Features as float32 rows, labels as class indices into sorted `classes`."""
    table = read_table(path)
    if table.num_rows == 0:
        raise InvalidInput(f"{path.name} holds no rows", {"path": str(path)})
    features = feature_columns(table, path.name, label, features)
    classes = label_classes(table, label)
    x, y = table_arrays(table, features, label, classes)
    return TabularData(features, label, x, y, classes)
