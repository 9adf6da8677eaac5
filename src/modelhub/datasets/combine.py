"""Several datasets as one: the built-in trainers read the union of a pipeline's datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelhub.datasets.table import Table, read_table, write_table
from modelhub.domain.enums import DatasetFormat
from modelhub.errors import InvalidInput


def combine(sources: Sequence[tuple[str, Path, DatasetFormat]], out: Path) -> Path:
    """Rows of every (name, file, format) in order, written to `out` in the first's format.

    Columns must agree: a dataset whose columns differ from the first's is refused,
    naming both column lists, rather than padded with missing values.
    """
    if not sources:
        raise InvalidInput("no datasets to combine")
    first_name, first_path, first_format = sources[0]
    combined = read_table(first_path, first_format)
    for name, path, fmt in sources[1:]:
        table = read_table(path, fmt)
        if sorted(table.columns) != sorted(combined.columns):
            raise InvalidInput(
                f"dataset {name} has columns {table.columns}, {first_name} has "
                f"{combined.columns}: the built-in trainers read them as one table",
                {"dataset": name},
            )
        combined.rows += table.rows
        combined.lines += table.lines
    write_table(
        Table(
            name=out.name,
            format=first_format,
            columns=combined.columns,
            rows=combined.rows,
            lines=combined.lines,
            schema=combined.schema,
        ),
        out,
    )
    return out
