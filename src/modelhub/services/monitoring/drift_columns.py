"""Which columns of a data file a version's drift reference profiles, and under what name.

A profile names a model's inputs as the model reads them and its outputs as
`output.<name>`, so that an input and an output of one name (a generator's `text`)
stay apart. What a version reads comes from what is known of it:

- a tabular model trained here: its feature columns (config.json `features`); its
  one input tensor is split back into those columns when live requests are read;
- a text classifier trained here: one `text` input (read from the training data's
  `text_field`);
- any other version with an input signature: the signature's input names;
- a version with no signature: every column of the file is an input.

The outputs a file may also hold are the version's output names (`label` for the
classifiers trained here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelhub.datasets.profile import detect_format
from modelhub.datasets.table import read_table
from modelhub.domain.enums import DatasetFormat
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput

OUTPUT_PREFIX = "output."
TABULAR_TRAINER = "tabular_classifier"
TEXT_TRAINER = "text_classifier"
TABULAR_INPUT = "input"  # the one input tensor of the tabular runtime

Columns = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class Expected:
    """The columns a file for this version holds: inputs required, outputs optional."""

    inputs: list[str] | None  # None: any columns, all inputs
    outputs: list[str] = field(default_factory=list)
    # For a trained version's own dataset: the dataset column each name is read from.
    sources: dict[str, str] = field(default_factory=dict)
    # Live tensors split into named columns: tensor name -> column names.
    split: dict[str, list[str]] = field(default_factory=dict)


def expected_columns(version: ModelVersion) -> Expected:
    trainer = version.inspection.get("trainer")
    features = version.inspection.get("features")
    if trainer == TABULAR_TRAINER and isinstance(features, list) and features:
        names = [str(f) for f in features]
        label = str(version.inspection.get("label", "label"))
        return Expected(names, ["label"], {"label": label}, {TABULAR_INPUT: names})
    if trainer == TEXT_TRAINER:
        hp = version.lineage.hyperparameters
        text = str(hp.get("text_field", "text"))
        label = str(hp.get("label_field", "label"))
        return Expected(["text"], ["label"], {"text": text, "label": label})
    if version.signature.inputs:
        return Expected(
            [t.name for t in version.signature.inputs], [t.name for t in version.signature.outputs]
        )
    return Expected(None)


def read_columns(path: Path, format: str | None, max_rows: int) -> Columns:
    """Every column of a CSV, JSONL or Parquet file, as arrays of its values."""
    fmt: DatasetFormat = detect_format(path, format)
    table = read_table(path, fmt)
    if len(table.rows) > max_rows:
        raise InvalidInput(
            f"{path.name} holds {len(table.rows)} rows; a drift reference takes at most "
            f"{max_rows} (MODELHUB_DRIFT_MAX_REFERENCE_ROWS)",
            {"rows": len(table.rows), "limit": max_rows},
        )
    return {name: _array([row.get(name) for row in table.rows]) for name in table.columns}


def _array(values: list[Any]) -> npt.NDArray[Any]:
    if values and all(isinstance(v, list) for v in values):  # a JSONL vector column
        widths = {len(v) for v in values}
        if len(widths) == 1:
            return np.array(values, dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def named_for_profile(
    columns: Columns, expected: Expected, what: str, training: bool = False
) -> tuple[Columns, dict[str, str]]:
    """The file's columns under their profile names, with their roles.

    A name is looked up as itself or as the training data's column for it (`label`
    or the training label `y`); a version's own training dataset (`training`) is
    read through the training names first and may hold more columns than the
    model reads, while a user's file must hold only columns that mean something to
    the version. Raises InvalidInput naming the missing and the unexpected columns.
    """
    if expected.inputs is None:
        return dict(columns), dict.fromkeys(columns, "input")

    def found(name: str) -> str | None:
        alias = expected.sources.get(name)
        order = [alias, name] if training else [name, alias]
        return next((c for c in order if c is not None and c in columns), None)

    missing = [name for name in expected.inputs if found(name) is None]
    used = {found(name) for name in expected.inputs + expected.outputs} - {None}
    extra = [] if training else [c for c in columns if c not in used]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise InvalidInput(
            f"{what} does not match the version's inputs ({'; '.join(parts)}); it reads "
            f"{', '.join(expected.inputs)}"
            + (f" and may give outputs {', '.join(expected.outputs)}" if expected.outputs else ""),
            {"missing": missing, "unexpected": extra, "expected": expected.inputs},
        )
    out: Columns = {}
    roles: dict[str, str] = {}
    for name in expected.inputs:
        out[name] = columns[found(name) or name]
        roles[name] = "input"
    for name in expected.outputs:
        column = found(name)
        if column is not None and column not in expected.inputs:
            out[OUTPUT_PREFIX + name] = columns[column]
            roles[OUTPUT_PREFIX + name] = "output"
    return out, roles


def live_columns(inputs: Columns, outputs: Columns, expected: Expected) -> Columns:
    """A window of logged requests under the profile's names."""
    from modelhub.monitoring.drift import split_columns

    out = split_columns(inputs, expected.split)
    for name, values in split_columns(outputs, {}).items():
        out[OUTPUT_PREFIX + name] = values
    return out
