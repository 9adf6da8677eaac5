from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import TypeAdapter

from modelhub.datasets.preprocess import PreprocessResult, preprocess
from modelhub.datasets.table import Table, read_table, write_table
from modelhub.domain.enums import DatasetFormat
from modelhub.domain.pipelines import PreprocessingStep
from modelhub.errors import InvalidInput

STEPS = TypeAdapter(list[PreprocessingStep])
Rows = list[dict[str, Any]]


def steps(*specs: dict[str, Any]) -> list[PreprocessingStep]:
    return STEPS.validate_python(list(specs))


def write(path: Path, rows: Rows) -> Path:
    """Write rows in the format the suffix names; CSV cells as text, None as empty."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif path.suffix == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read(path: Path) -> Rows:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".csv":
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    rows: Rows = pq.read_table(path).to_pylist()
    return rows


def run(source: Path, *specs: dict[str, Any]) -> PreprocessResult:
    fmt = DatasetFormat(source.suffix.lstrip("."))
    return preprocess(source, fmt, steps(*specs), source.parent / "out")


def only_report(result: PreprocessResult) -> dict[str, Any]:
    (report,) = result.steps
    return report.details


# --- no steps, formats, result shape ------------------------------------------------


def test_no_steps_returns_the_source_itself(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"a": 1}, {"a": 2}])
    result = preprocess(source, DatasetFormat.JSONL, [], tmp_path / "out")
    assert result == PreprocessResult(source, 2, 2, [])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_format_is_written_back_in_its_own_format_under_the_same_name(
    tmp_path: Path, suffix: str
) -> None:
    rows = [
        {"id": 1, "text": "Good, thanks!", "score": 2},
        {"id": 2, "text": "Good, thanks!", "score": 4},
        {"id": 3, "text": "meh", "score": 6},
    ]
    source = write(tmp_path / f"data{suffix}", rows)
    before = source.read_bytes()
    result = run(
        source,
        {"step": "dedupe", "columns": ["text"]},
        {"step": "tokenize", "max_length": 2},
        {"step": "normalize", "columns": ["score"], "method": "minmax"},
    )
    assert result.path == tmp_path / "out" / f"data{suffix}"
    assert (result.rows_in, result.rows_out) == (3, 2)
    assert [(r.step, r.rows_in, r.rows_out) for r in result.steps] == [
        ("dedupe", 3, 2),
        ("tokenize", 2, 2),
        ("normalize", 2, 2),
    ]
    written = read(result.path)
    if suffix == ".csv":
        assert written == [
            {"id": "1", "text": "good ,", "score": "0.0"},
            {"id": "3", "text": "meh", "score": "1.0"},
        ]
    else:
        assert written == [
            {"id": 1, "text": "good ,", "score": 0.0},
            {"id": 3, "text": "meh", "score": 1.0},
        ]
    assert source.read_bytes() == before


def test_reports_are_json_serialisable(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"text": "a b", "x": 1}, {"text": "c", "x": 3}])
    result = run(
        source,
        {"step": "tokenize", "vocab_size": 2},
        {"step": "normalize"},
        {"step": "dedupe"},
        {"step": "filter", "column": "x", "op": "in", "value": [-1.0, 1.0]},
    )
    json.dumps([asdict(report) for report in result.steps], allow_nan=False)


# --- tokenize -----------------------------------------------------------------------


def test_tokenize_lowercases_splits_on_spaces_and_punctuation_and_truncates(
    tmp_path: Path,
) -> None:
    source = write(
        tmp_path / "d.jsonl",
        [
            {"text": "Hello,   WORLD! It's me."},
            {"text": "short"},
            {"text": None},
            {"other": 1},
        ],
    )
    result = run(source, {"step": "tokenize", "max_length": 5})
    assert read(result.path) == [
        {"text": "hello , world ! it"},
        {"text": "short"},
        {"text": None},
        {"other": 1},
    ]
    assert only_report(result) == {
        "column": "text",
        "rows_tokenized": 2,
        "vocabulary_size": 6,
        "unknown_tokens": 0,
        "tokens_truncated": 4,  # ' s me .
        "rows_truncated": 1,
        "mean_tokens": 3.0,
    }


def test_tokenize_keeps_case_when_asked(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"body": "Hi THERE"}])
    result = run(source, {"step": "tokenize", "column": "body", "lowercase": False})
    assert read(result.path) == [{"body": "Hi THERE"}]


def test_tokenize_vocab_size_turns_rare_tokens_into_unk(tmp_path: Path) -> None:
    source = write(
        tmp_path / "d.jsonl",
        [{"text": "the cat the dog"}, {"text": "the cat a bird"}],
    )
    result = run(source, {"step": "tokenize", "vocab_size": 3})
    # the (3) and cat (2) stay; dog, a and bird (1 each) become <unk>
    assert read(result.path) == [{"text": "the cat the <unk>"}, {"text": "the cat <unk> <unk>"}]
    details = only_report(result)
    assert details["vocabulary_size"] == 3 and details["unknown_tokens"] == 3


def test_tokenize_vocab_ties_go_to_the_token_seen_first(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"text": "b a"}, {"text": "c"}])
    result = run(source, {"step": "tokenize", "vocab_size": 2})
    assert read(result.path) == [{"text": "b <unk>"}, {"text": "<unk>"}]


def test_tokenize_vocab_size_larger_than_the_vocabulary_changes_nothing(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"text": "a b"}, {"text": "b c"}])
    result = run(source, {"step": "tokenize", "vocab_size": 4})
    assert read(result.path) == [{"text": "a b"}, {"text": "b c"}]
    assert only_report(result)["vocabulary_size"] == 3


def test_tokenize_refuses_a_number(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"text": "ok"}, {"text": 5}])
    with pytest.raises(InvalidInput, match=r"step 1 \(tokenize\): column 'text' at d.jsonl line 2"):
        run(source, {"step": "tokenize"})


# --- normalize ----------------------------------------------------------------------


def test_normalize_standard_scales_every_numeric_column_and_reports_mean_and_std(
    tmp_path: Path,
) -> None:
    source = tmp_path / "d.csv"
    source.write_text("a,b,label,flag\n1,2.0,x,1\n2,,y,1\n3,4.0,z,1\n")
    result = run(source, {"step": "normalize"})
    assert read(result.path) == [
        {"a": "-1.224744871391589", "b": "-1.0", "label": "x", "flag": "0.0"},
        {"a": "0.0", "b": "", "label": "y", "flag": "0.0"},
        {"a": "1.224744871391589", "b": "1.0", "label": "z", "flag": "0.0"},
    ]
    columns = only_report(result)["columns"]
    assert columns["a"] == {"mean": 2.0, "std": pytest.approx(0.816496580927726)}
    assert columns["b"] == {"mean": 3.0, "std": 1.0}
    assert columns["flag"] == {"mean": 1.0, "std": 0.0}  # std 0: only centred
    assert list(columns) == ["a", "b", "flag"]


def test_normalize_minmax_on_parquet_makes_ints_floats_and_skips_bools(tmp_path: Path) -> None:
    source = write(
        tmp_path / "d.parquet",
        [
            {"n": 10, "same": 5, "ok": True, "name": "a"},
            {"n": 20, "same": 5, "ok": False, "name": "b"},
            {"n": 30, "same": 5, "ok": True, "name": "c"},
        ],
    )
    result = run(source, {"step": "normalize", "method": "minmax"})
    assert read(result.path) == [
        {"n": 0.0, "same": 0.0, "ok": True, "name": "a"},
        {"n": 0.5, "same": 0.0, "ok": False, "name": "b"},
        {"n": 1.0, "same": 0.0, "ok": True, "name": "c"},
    ]
    schema = pq.read_schema(result.path)
    assert schema.field("n").type == pa.float64() and schema.field("ok").type == pa.bool_()
    assert only_report(result) == {
        "method": "minmax",
        "columns": {"n": {"min": 10.0, "max": 30.0}, "same": {"min": 5.0, "max": 5.0}},
    }


def test_normalize_refuses_a_named_text_column(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"x": 1}, {"x": "two"}])
    with pytest.raises(InvalidInput) as caught:
        run(source, {"step": "normalize", "columns": ["x"]})
    assert caught.value.message == (
        "preprocessing step 1 (normalize): column 'x' at d.jsonl line 2 "
        "holds the text 'two', not a number"
    )
    assert caught.value.details["line"] == 2


@pytest.mark.parametrize("bad", ["NaN", "Infinity", str(10**400)])
def test_normalize_refuses_numbers_that_are_not_finite(tmp_path: Path, bad: str) -> None:
    source = tmp_path / "d.jsonl"
    source.write_text(f'{{"x": 1}}\n{{"x": {bad}}}\n')
    with pytest.raises(InvalidInput, match=r"column 'x' at d\.jsonl line 2 holds the number"):
        run(source, {"step": "normalize"})


def test_normalize_refuses_data_without_numbers(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"x": "a"}])
    with pytest.raises(InvalidInput, match="no numeric column to normalize"):
        run(source, {"step": "normalize"})


# --- dedupe -------------------------------------------------------------------------


def test_dedupe_whole_rows_keeps_the_first_and_the_order(tmp_path: Path) -> None:
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 1, "b": "x"}, {"a": 3, "b": "y"}]
    source = write(tmp_path / "d.jsonl", rows)
    result = run(source, {"step": "dedupe"})
    assert read(result.path) == [rows[0], rows[1], rows[3]]
    assert only_report(result) == {"columns": None, "keep": "first", "removed": 1}


def test_dedupe_by_columns_keeping_the_last(tmp_path: Path) -> None:
    rows = [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "a", "v": 3}, {"k": "c", "v": 4}]
    source = write(tmp_path / "d.jsonl", rows)
    result = run(source, {"step": "dedupe", "columns": ["k"], "keep": "last"})
    assert read(result.path) == [rows[1], rows[2], rows[3]]
    assert only_report(result)["removed"] == 1


def test_dedupe_tells_true_from_1_and_compares_lists_by_content(tmp_path: Path) -> None:
    rows: Rows = [{"v": True}, {"v": 1}, {"v": [1, 2]}, {"v": [1, 2]}]
    result = run(write(tmp_path / "d.jsonl", rows), {"step": "dedupe"})
    assert read(result.path) == rows[:3]


# --- filter -------------------------------------------------------------------------

FILTER_ROWS: Rows = [
    {"id": 1, "age": 15, "city": "Oslo"},
    {"id": 2, "age": 30, "city": "Rome"},
    {"id": 3, "age": None, "city": "Oslo"},
    {"id": 4, "age": 45},
]


@pytest.mark.parametrize(
    ("column", "op", "value", "kept"),
    [
        ("age", "==", 30, [2]),
        ("age", "!=", 30, [1, 3, 4]),  # a missing age is "not 30"
        ("age", "<", 30, [1]),
        ("age", "<=", 30, [1, 2]),
        ("age", ">", 15.5, [2, 4]),
        ("age", ">=", 45, [4]),
        ("city", "in", ["Oslo", "Paris"], [1, 3]),
        ("city", "not_in", ["Oslo"], [2, 4]),
        ("age", "not_null", None, [1, 2, 4]),
        ("city", "<", "P", [1, 3]),
    ],
)
def test_filter_keeps_the_rows_where_the_condition_holds(
    tmp_path: Path, column: str, op: str, value: Any, kept: list[int]
) -> None:
    source = write(tmp_path / "d.jsonl", FILTER_ROWS)
    result = run(source, {"step": "filter", "column": column, "op": op, "value": value})
    assert [row["id"] for row in read(result.path)] == kept
    assert only_report(result) == {
        "column": column,
        "op": op,
        "value": value,
        "removed": len(FILTER_ROWS) - len(kept),
    }


def test_filter_on_csv_compares_numeric_columns_as_numbers(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text("id,score\na,9\nb,10\nc,\n")
    result = run(source, {"step": "filter", "column": "score", "op": ">", "value": 9})
    assert read(result.path) == [{"id": "b", "score": "10"}]


def test_filter_comparing_text_with_a_number_names_the_column_and_line(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"age": 3}, {"age": None}, {"age": "old"}])
    with pytest.raises(InvalidInput) as caught:
        run(source, {"step": "filter", "column": "age", "op": ">", "value": 2})
    assert caught.value.message == (
        "preprocessing step 1 (filter): column 'age' at d.jsonl line 3 "
        "holds the text 'old', which cannot be compared with the number 2"
    )
    assert caught.value.details == {
        "field": "preprocessing[0]",
        "step": "filter",
        "column": "age",
        "line": 3,
    }


def test_filter_error_on_parquet_names_the_row(tmp_path: Path) -> None:
    source = write(tmp_path / "d.parquet", [{"city": "Oslo"}, {"city": "Rome"}])
    with pytest.raises(InvalidInput, match=r"column 'city' at d\.parquet row 1 holds the text"):
        run(source, {"step": "filter", "column": "city", "op": "==", "value": 1})


# --- order and bad input ------------------------------------------------------------


def test_steps_run_in_the_order_given(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": 0}, {"text": "a", "label": 1}, {"text": "b", "label": 1}]
    source = write(tmp_path / "d.jsonl", rows)
    dedupe = {"step": "dedupe", "columns": ["text"]}
    keep_ones = {"step": "filter", "column": "label", "op": "==", "value": 1}

    first = run(source, dedupe, keep_ones)
    assert read(first.path) == [rows[2]]
    assert [(r.rows_in, r.rows_out) for r in first.steps] == [(3, 2), (2, 1)]

    second = run(source, keep_ones, dedupe)
    assert read(second.path) == [rows[1], rows[2]]
    assert [(r.rows_in, r.rows_out) for r in second.steps] == [(3, 2), (2, 2)]


def test_a_column_the_data_lacks_is_named_with_the_step_and_the_columns_there(
    tmp_path: Path,
) -> None:
    source = write(tmp_path / "d.jsonl", [{"text": "a", "label": 1}])
    with pytest.raises(InvalidInput) as caught:
        run(source, {"step": "dedupe"}, {"step": "normalize", "columns": ["label", "score"]})
    assert caught.value.message == (
        "preprocessing step 2 (normalize) names column 'score', which d.jsonl lacks; "
        "its columns are: text, label"
    )
    assert caught.value.details["columns"] == ["text", "label"]
    assert not (tmp_path / "out").exists()  # checked before any work


def test_an_empty_column_list_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"a": 1}])
    with pytest.raises(InvalidInput, match=r"step 1 \(dedupe\) names no columns"):
        run(source, {"step": "dedupe", "columns": []})


def test_a_step_that_removes_every_row_fails_and_writes_nothing(tmp_path: Path) -> None:
    source = write(tmp_path / "d.csv", [{"x": "1"}, {"x": "2"}])
    (tmp_path / "out").mkdir()
    with pytest.raises(InvalidInput) as caught:
        run(source, {"step": "dedupe"}, {"step": "filter", "column": "x", "op": ">", "value": 5})
    assert caught.value.message == "preprocessing step 2 (filter) removed every row"
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failed_write_leaves_no_file_behind(tmp_path: Path) -> None:
    def half_then_fail(table: Table, out: IO[bytes]) -> None:
        out.write(b'{"partial": ')
        raise OSError("disk full")

    source = write(tmp_path / "d.jsonl", [{"a": 1}, {"a": 1}])
    table = read_table(source, DatasetFormat.JSONL)
    folder = tmp_path / "out"
    folder.mkdir(exist_ok=True)
    with pytest.raises(OSError, match="disk full"):
        write_table(table, folder / "d.jsonl", writer=half_then_fail)
    assert list(folder.iterdir()) == []


def test_a_bad_row_is_named_by_its_line(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text("a,b\n1,2\n3\n")
    with pytest.raises(InvalidInput, match=r"d\.csv line 3: 1 fields, the header has 2"):
        run(source, {"step": "dedupe"})


def test_the_source_is_never_overwritten(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"a": 1}, {"a": 1}])
    before = source.read_bytes()
    with pytest.raises(InvalidInput, match="would overwrite its source"):
        preprocess(source, DatasetFormat.JSONL, steps({"step": "dedupe"}), tmp_path)
    assert source.read_bytes() == before


# --- hostile values (issue 19): bounded, never an overflow, a nan or a crash ---------


@pytest.mark.parametrize(
    ("method", "expected"),
    [("standard", [1.5**0.5, -(1.5**0.5), 0.0]), ("minmax", [1.0, 0.0, 0.5])],
)
def test_normalize_handles_values_near_the_float_limit(
    tmp_path: Path, method: str, expected: list[float]
) -> None:
    source = write(tmp_path / "d.jsonl", [{"x": 1e308}, {"x": -1e308}, {"x": 0.0}])
    result = run(source, {"step": "normalize", "method": method})
    got = [row["x"] for row in read(result.path)]
    assert got == pytest.approx(expected)
    used = only_report(result)["columns"]["x"]
    assert all(abs(v) < float("inf") for v in used.values())


def test_normalize_gives_ordinary_data_the_same_values_as_before(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", [{"x": 1}, {"x": 2}, {"x": 4}])
    result = run(source, {"step": "normalize"})
    mean = 7 / 3
    std = (((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 3) ** 0.5
    assert [row["x"] for row in read(result.path)] == [(x - mean) / std for x in (1, 2, 4)]


def test_dedupe_on_deeply_nested_values_is_refused_when_read(tmp_path: Path) -> None:
    deep = "[" * 900 + "]" * 900
    source = tmp_path / "d.jsonl"
    source.write_text(f'{{"x": 1}}\n{{"x": {deep}}}\n')
    with pytest.raises(InvalidInput) as caught:
        run(source, {"step": "dedupe"})
    assert caught.value.message.startswith("d.jsonl line 2: nested more than 64 levels")


def test_dedupe_still_compares_nested_values_by_content(tmp_path: Path) -> None:
    nested = {"a": [1, {"b": [2, 3]}]}
    source = write(tmp_path / "d.jsonl", [{"x": nested}, {"x": nested}, {"x": [nested]}])
    assert only_report(run(source, {"step": "dedupe"}))["removed"] == 1


def test_a_csv_number_beyond_float_range_stays_text(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text("x,y\n1e400,1\n2,inf\n")
    with pytest.raises(InvalidInput, match="holds the text '1e400', not a number"):
        run(source, {"step": "normalize", "columns": ["x"]})
    with pytest.raises(InvalidInput, match="holds the number inf, not a finite number"):
        run(source, {"step": "normalize", "columns": ["y"]})


def test_a_csv_with_a_byte_order_mark_keeps_its_first_column_name(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_bytes(b"\xef\xbb\xbfa,b\n1,x\n1,x\n")
    result = run(source, {"step": "dedupe", "columns": ["a"]})
    assert read(result.path) == [{"a": "1", "b": "x"}]
