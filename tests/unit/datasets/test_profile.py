from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelhub.datasets.profile import profile_dataset
from modelhub.domain.enums import DatasetFormat
from modelhub.errors import InvalidInput


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_rows_and_column_types(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "intents.jsonl",
        [
            {"text": "hi", "label": 1},
            {"text": "bye", "label": 2, "score": 0.5},
            {"text": "x", "label": 1.5},
        ],
    )
    profile = profile_dataset(path)
    assert profile.format == DatasetFormat.JSONL and profile.rows == 3
    assert profile.columns == {"text": "string", "label": "float", "score": "float"}


def test_csv_rows_and_column_types(tmp_path: Path) -> None:
    path = tmp_path / "features.csv"
    path.write_text("a,b,label\n1,0.5,yes\n2,,no\n\n3,1.5,yes\n")
    profile = profile_dataset(path)
    assert profile.rows == 3
    assert profile.columns == {"a": "int", "b": "float", "label": "string"}


def test_parquet_uses_the_file_schema(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "table.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]}), path)
    profile = profile_dataset(path)
    assert profile.rows == 3 and profile.columns == {"x": "int64", "y": "string"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"a": 1}\n{"a": \n', "bad.jsonl line 2: not valid JSON"),
        (
            "list.jsonl",
            '{"a": 1}\n\n[1, 2]\n',
            "list.jsonl line 3: each line must be a JSON object",
        ),
        ("short.csv", "a,b\n1,2\n3\n", "short.csv line 3: 1 fields, the header has 2"),
        ("nohead.csv", ",b\n1,2\n", "nohead.csv line 1: the header must name every column"),
        ("twice.csv", "a,a\n1,2\n", "twice.csv line 1: the header names a column twice"),
        ("empty.jsonl", "\n\n", "empty.jsonl holds no rows"),
        ("data.txt", "a\n1\n", "cannot tell the format of data.txt"),
        ("fake.parquet", "not parquet", "fake.parquet is not a valid Parquet file"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidInput) as caught:
        profile_dataset(path)
    assert message in caught.value.message


def test_not_utf8_csv(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name\n\xe9t\xe9\n")
    with pytest.raises(InvalidInput, match="is not UTF-8 text"):
        profile_dataset(path)


def test_declared_format_wins_and_unknown_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.txt", [{"a": 1}])
    assert profile_dataset(path, "jsonl").rows == 1
    with pytest.raises(InvalidInput, match="unknown format 'xml'"):
        profile_dataset(path, "xml")


# --- hostile files (issue 19): every one is an InvalidInput naming its line ----------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"a": ' + "9" * 5000 + "}", "d.jsonl line 2: not valid JSON"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "d.jsonl line 2: nested too deeply"),
        ('{"a": ' + "[" * 65 + "]" * 65 + "}", "d.jsonl line 2: nested more than 64 levels"),
    ],
    ids=["5000-digit-int", "100000-deep", "65-deep"],
)
def test_hostile_jsonl_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n' + line + "\n")
    with pytest.raises(InvalidInput) as caught:
        profile_dataset(path)
    assert caught.value.message.startswith(message)
    assert caught.value.details["line"] == 2


def test_jsonl_at_the_depth_limit_and_with_long_ints_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": ' + "[" * 63 + "]" * 63 + ', "n": ' + "9" * 400 + "}\n")
    assert profile_dataset(path).columns == {"a": "list", "n": "int"}


def test_a_csv_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,x\n")
    assert profile_dataset(path).columns == {"a": "int", "b": "string"}


def test_a_csv_cell_beyond_float_range_is_text(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("big,inf,nan\n1e400,inf,nan\n")
    assert profile_dataset(path).columns == {"big": "string", "inf": "float", "nan": "float"}
