"""A dataset file's rows held in memory, read and written back in the file's own format.

Each row remembers where it came from (its line in CSV and JSONL, its row number in
Parquet) so that a later problem can still point at the source. A CSV cell is text;
a CSV column becomes numbers only when every non-empty cell in it reads as one (as
the profile's column types say), and an empty cell is a missing value.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from modelhub.datasets.profile import csv_rows, jsonl_rows, number_of_text
from modelhub.domain.enums import DatasetFormat
from modelhub.errors import InvalidInput


@dataclass
class Table:
    name: str
    format: DatasetFormat
    columns: list[str]
    rows: list[dict[str, Any]]
    lines: list[int]
    schema: Any = None  # the pyarrow schema of a Parquet source
    float_columns: set[str] = field(default_factory=set)  # made float by a step

    @property
    def unit(self) -> str:
        return "row" if self.format is DatasetFormat.PARQUET else "line"

    def where(self, index: int) -> str:
        return f"{self.name} {self.unit} {self.lines[index]}"

    def keep(self, indices: list[int]) -> None:
        self.rows = [self.rows[i] for i in indices]
        self.lines = [self.lines[i] for i in indices]


def read_table(path: Path, fmt: DatasetFormat) -> Table:
    """Every row of the file; raises InvalidInput naming the first bad line, or if empty."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", {"path": str(path)})
    readers: dict[DatasetFormat, Callable[[Path], Table]] = {
        DatasetFormat.CSV: _read_csv,
        DatasetFormat.JSONL: _read_jsonl,
        DatasetFormat.PARQUET: _read_parquet,
    }
    table = readers[fmt](path)
    if not table.rows:
        raise InvalidInput(f"{path.name} holds no rows", {"path": str(path)})
    return table


TableWriter = Callable[[Table, IO[bytes]], None]


def write_table(table: Table, path: Path, writer: TableWriter | None = None) -> None:
    """Write to a temporary name beside `path`, then rename: never a half-written file.

    `writer` encodes the rows; by default the one for the table's format.
    """
    writers: dict[DatasetFormat, TableWriter] = {
        DatasetFormat.CSV: _write_csv,
        DatasetFormat.JSONL: _write_jsonl,
        DatasetFormat.PARQUET: _write_parquet,
    }
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            (writer or writers[table.format])(table, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _read_csv(path: Path) -> Table:
    lines: list[int] = []
    rows: list[dict[str, Any]] = []
    for line, texts in csv_rows(path):
        lines.append(line)
        rows.append({name: text if text != "" else None for name, text in texts.items()})
    columns = list(rows[0]) if rows else []
    for column in columns:
        numbers = [_number(row[column]) for row in rows]
        if all(n is not None or row[column] is None for n, row in zip(numbers, rows, strict=True)):
            for number, row in zip(numbers, rows, strict=True):
                row[column] = number
    return Table(path.name, DatasetFormat.CSV, columns, rows, lines)


def _number(text: str | None) -> int | float | None:
    return None if text is None else number_of_text(text)


def _read_jsonl(path: Path) -> Table:
    lines: list[int] = []
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    for line, record in jsonl_rows(path):
        lines.append(line)
        rows.append(record)
        columns.update(dict.fromkeys(record))
    return Table(path.name, DatasetFormat.JSONL, list(columns), rows, lines)


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise InvalidInput(f"{path.name} is not a valid Parquet file: {exc}") from exc
    rows: list[dict[str, Any]] = arrow.to_pylist()
    lines = list(range(1, len(rows) + 1))
    return Table(
        path.name, DatasetFormat.PARQUET, list(arrow.column_names), rows, lines, arrow.schema
    )


def _write_csv(table: Table, out: IO[bytes]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow("" if row.get(c) is None else row[c] for c in table.columns)
    text.flush()
    text.detach()


def _write_jsonl(table: Table, out: IO[bytes]) -> None:
    for row in table.rows:
        out.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")


def _write_parquet(table: Table, out: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [
        pa.field(f.name, pa.float64(), f.nullable, f.metadata)
        if f.name in table.float_columns
        else f
        for f in table.schema
    ]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    arrays = [pa.array([row.get(f.name) for row in table.rows], type=f.type) for f in fields]
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), out)
