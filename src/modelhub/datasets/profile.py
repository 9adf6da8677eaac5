"""Profile a dataset file: check every row parses, count rows, infer column types.

A row that does not parse is named by its line number, so the user can fix the
file instead of guessing. Files are streamed; only the column types are kept.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelhub.domain.bounded_json import MAX_JSON_DEPTH, loads
from modelhub.domain.enums import DatasetFormat, parse_enum
from modelhub.errors import InvalidInput

SUFFIXES = {
    ".csv": DatasetFormat.CSV,
    ".jsonl": DatasetFormat.JSONL,
    ".parquet": DatasetFormat.PARQUET,
}


@dataclass
class DatasetProfile:
    format: DatasetFormat
    rows: int
    columns: dict[str, str] = field(default_factory=dict)


def detect_format(path: Path, declared: str | None) -> DatasetFormat:
    if declared:
        return parse_enum(DatasetFormat, declared, "format")
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"cannot tell the format of {path.name}: name it .csv, .jsonl or .parquet, "
            "or pass --format",
            {"path": str(path)},
        )
    return found


def profile_dataset(path: Path, declared: str | None = None) -> DatasetProfile:
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", {"path": str(path)})
    fmt = detect_format(path, declared)
    readers = {
        DatasetFormat.CSV: _profile_csv,
        DatasetFormat.JSONL: _profile_jsonl,
        DatasetFormat.PARQUET: _profile_parquet,
    }
    profile = readers[fmt](path)
    if profile.rows == 0:
        raise InvalidInput(f"{path.name} holds no rows", {"path": str(path)})
    return profile


def _value_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "object"


def _text_type(text: str) -> str:
    number = number_of_text(text)
    if number is None:
        return "string"
    return "int" if type(number) is int else "float"


def number_of_text(text: str) -> int | float | None:
    """The number a CSV cell spells, or None when it spells none.

    Too many digits for an int, or a float beyond its range ("1e400"), is text, not a
    silent inf; "inf" and "nan" spelled out stay the floats they name.
    """
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    if math.isinf(number) and "inf" not in text.lower():
        return None
    return number


def _merge(types: dict[str, str], column: str, found: str) -> None:
    seen = types.get(column)
    if seen is None or seen == "null":
        types[column] = found
    elif found not in (seen, "null"):
        types[column] = "float" if {seen, found} == {"int", "float"} else "mixed"


def _bad_row(path: Path, line: int, problem: str) -> InvalidInput:
    return InvalidInput(f"{path.name} line {line}: {problem}", {"path": str(path), "line": line})


def csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Each data row of a CSV file as (line, {column: text}); blank lines are skipped.

    Shared with preprocessing so that both name a bad row the same way.
    """
    try:
        # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first name
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or any(not name.strip() for name in header):
                raise _bad_row(path, 1, "the header must name every column")
            if len(set(header)) != len(header):
                raise _bad_row(path, 1, "the header names a column twice")
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise _bad_row(
                        path, reader.line_num, f"{len(row)} fields, the header has {len(header)}"
                    )
                yield reader.line_num, dict(zip(header, row, strict=True))
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise InvalidInput(f"{path.name} is not valid CSV: {exc}") from exc


def jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each object of a JSONL file as (line, object); blank lines are skipped."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:  # bounded: deep nesting or a 5,000-digit int is this line's error
                record = loads(raw, f"line {number}", max_depth=MAX_JSON_DEPTH)
            except InvalidInput as exc:
                problem = exc.message.removeprefix(f"line {number} is ")
                raise _bad_row(path, number, problem) from None
            if not isinstance(record, dict):
                raise _bad_row(path, number, "each line must be a JSON object")
            yield number, record


def _profile_csv(path: Path) -> DatasetProfile:
    types: dict[str, str] = {}
    rows = 0
    for _, row in csv_rows(path):
        for name, text in row.items():
            _merge(types, name, _text_type(text) if text != "" else "null")
        rows += 1
    return DatasetProfile(DatasetFormat.CSV, rows, types)


def _profile_jsonl(path: Path) -> DatasetProfile:
    types: dict[str, str] = {}
    rows = 0
    for _, record in jsonl_rows(path):
        for name, value in record.items():
            _merge(types, name, _value_type(value))
        rows += 1
    return DatasetProfile(DatasetFormat.JSONL, rows, types)


def _profile_parquet(path: Path) -> DatasetProfile:
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise InvalidInput(f"{path.name} is not a valid Parquet file: {exc}") from exc
    columns = {f.name: str(f.type) for f in schema}
    return DatasetProfile(DatasetFormat.PARQUET, int(metadata.num_rows), columns)
