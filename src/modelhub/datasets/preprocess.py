"""Apply a pipeline's preprocessing steps to a dataset file before training.

The result is a new file in the same format and with the same name, in another
folder; the source, which the artifact store addresses by digest, is never touched.
Each step's report goes into the run's record. See docs/pipelines.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelhub.datasets.profile import profile_dataset
from modelhub.datasets.steps import StepFailed, apply_step
from modelhub.datasets.table import Table, read_table, write_table
from modelhub.domain.enums import DatasetFormat
from modelhub.domain.pipelines import Dedupe, Normalize, PreprocessingStep
from modelhub.errors import InvalidInput


@dataclass(frozen=True)
class StepReport:
    step: str
    rows_in: int
    rows_out: int
    details: dict[str, Any]


@dataclass(frozen=True)
class PreprocessResult:
    path: Path
    rows_in: int
    rows_out: int
    steps: list[StepReport]


def preprocess(
    source: Path, format: DatasetFormat, steps: Sequence[PreprocessingStep], out_dir: Path
) -> PreprocessResult:
    """Read `source`, apply `steps` in order and write the result to out_dir/source.name.

    With no steps the source itself is the result: nothing is copied. Every step's
    columns are checked before any work is done. Raises InvalidInput for a bad row,
    a column the data lacks, a value a step cannot use (naming the step and the
    line), or a step that leaves no rows; then no output file is left behind.
    """
    if not steps:
        rows = profile_dataset(source, format).rows
        return PreprocessResult(source, rows, rows, [])
    target = out_dir / source.name
    if target.resolve() == source.resolve():
        raise InvalidInput(
            "preprocessing would overwrite its source: choose another out_dir",
            {"path": str(source)},
        )
    table = read_table(source, format)
    rows_in = len(table.rows)
    for index, step in enumerate(steps):
        _check_columns(table, index, step)
    reports = []
    for index, step in enumerate(steps):
        before = len(table.rows)
        try:
            details = apply_step(table, step)
        except StepFailed as exc:
            raise InvalidInput(
                f"{_label(index, step)}: {exc.message}", {**_where(index, step), **exc.details}
            ) from None
        if not table.rows:
            raise InvalidInput(f"{_label(index, step)} removed every row", _where(index, step))
        reports.append(StepReport(step.step, before, len(table.rows), details))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(table, target)
    return PreprocessResult(target, rows_in, len(table.rows), reports)


def _check_columns(table: Table, index: int, step: PreprocessingStep) -> None:
    if isinstance(step, Normalize | Dedupe) and step.columns == []:
        raise InvalidInput(
            f"{_label(index, step)} names no columns: leave columns out to use "
            + ("every numeric column" if isinstance(step, Normalize) else "the whole row"),
            _where(index, step),
        )
    for column in _columns_named(step):
        if column not in table.columns:
            raise InvalidInput(
                f"{_label(index, step)} names column {column!r}, which {table.name} lacks; "
                f"its columns are: {', '.join(table.columns)}",
                {**_where(index, step), "column": column, "columns": table.columns},
            )


def _columns_named(step: PreprocessingStep) -> list[str]:
    if isinstance(step, Normalize | Dedupe):
        return step.columns or []
    return [step.column]


def _label(index: int, step: PreprocessingStep) -> str:
    return f"preprocessing step {index + 1} ({step.step})"


def _where(index: int, step: PreprocessingStep) -> dict[str, Any]:
    return {"field": f"preprocessing[{index}]", "step": step.step}
