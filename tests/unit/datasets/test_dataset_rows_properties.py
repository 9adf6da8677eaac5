"""Property tests for the "dataset rows" family (issue 19, section 6): CSV and JSONL
parsing, then the preprocessing steps.

The contract: any file either profiles and preprocesses to sensible values (a result
file that reads back, finite statistics and finite normalized values) or raises
InvalidInput, leaving no output file behind. Any other exception fails the property.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from modelhub.datasets.preprocess import preprocess
from modelhub.datasets.profile import profile_dataset
from modelhub.domain.enums import DatasetFormat
from modelhub.domain.pipelines import PreprocessingStep
from modelhub.errors import InvalidInput

STEPS = TypeAdapter(list[PreprocessingStep])
COLUMNS = ["a", "b", "text"]
EDGE_TEXT = ["", "1e400", "-1e308", "1e308", "nan", "inf", "9" * 5000, "0x10", "1_000", "ß", '"']
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, 2**64, 1e308, -1e308, 5e-324, math.inf, math.nan]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner)
)
deep_lines = st.sampled_from([10, 64, 65, 900, 20_000]).map(
    lambda n: '{"a": ' + "[" * n + "]" * n + "}"
)


def rarely(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, 9)) == 0


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        if rarely(draw):
            line = draw(deep_lines | st.text(max_size=10) | st.just('{"a": ' + "9" * 5000 + "}"))
        else:
            values = st.floats(-1e3, 1e3) | st.integers(-5, 5) | scalars
            record = draw(st.dictionaries(st.sampled_from(COLUMNS), values | json_values))
            line = json.dumps(record)
        lines.append(line)
    return "\n".join(lines).encode()


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3, unique=True))
    cells = st.integers(-5, 5).map(str) | st.floats(-1e3, 1e3).map(str) | st.sampled_from(EDGE_TEXT)
    if rarely(draw):
        cells = cells | st.text(max_size=5)
    rows = [",".join(header)]
    for _ in range(draw(st.integers(0, 5))):
        width = len(header) if not rarely(draw) else draw(st.integers(0, 4))
        rows.append(",".join(draw(cells) for _ in range(width)))
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + "\n".join(rows).encode()


column = st.sampled_from(COLUMNS)
step_specs = st.one_of(
    st.builds(
        lambda c, m: {"step": "normalize", "columns": c, "method": m},
        st.none() | st.lists(column, min_size=1, max_size=2),
        st.sampled_from(["standard", "minmax"]),
    ),
    st.builds(
        lambda c, k: {"step": "dedupe", "columns": c, "keep": k},
        st.none() | st.lists(column, min_size=1, max_size=2),
        st.sampled_from(["first", "last"]),
    ),
    st.builds(lambda c: {"step": "tokenize", "column": c, "max_length": 4}, column),
    st.builds(
        lambda c, op, v: {"step": "filter", "column": c, "op": op, "value": v},
        column,
        st.sampled_from(["==", "!=", "<", ">="]),
        st.integers(-3, 3) | st.text(max_size=2) | st.floats(allow_nan=False),
    ),
)


def check_file(content: bytes, suffix: str, specs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"d{suffix}"
        source.write_bytes(content)
        out = Path(folder) / "out"
        try:
            profile = profile_dataset(source)
        except InvalidInput:
            event("refused at profile")
            return
        assert profile.rows > 0
        assert all(not name.startswith("\ufeff") for name in profile.columns)
        fmt = DatasetFormat(suffix.lstrip("."))
        try:
            result = preprocess(source, fmt, STEPS.validate_python(specs), out)
        except InvalidInput:
            event("refused at a step")
            assert not out.exists() or not any(out.iterdir())
            return
        event("preprocessed")
        assert profile_dataset(result.path).rows == result.rows_out > 0
        normalized: set[str] = set()
        for report in result.steps:
            if report.step == "normalize":
                for name, stats in report.details["columns"].items():
                    assert all(math.isfinite(value) for value in stats.values()), stats
                    normalized.add(name)
        if fmt is DatasetFormat.JSONL:
            # JSON Lines end each row with "\n" alone; str.splitlines would also split
            # inside a string at U+2028, U+0085 or \x1c, which JSON leaves unescaped.
            for line in filter(None, result.path.read_text().split("\n")):
                row = json.loads(line)
                for name in normalized & set(row):
                    assert row[name] is None or math.isfinite(row[name]), line


@settings(max_examples=80)
@given(jsonl_files(), st.lists(step_specs, min_size=1, max_size=3))
def test_jsonl_rows_profile_and_preprocess_sensibly_or_are_invalid_input(
    content: bytes, specs: list[dict[str, Any]]
) -> None:
    check_file(content, ".jsonl", specs)


@settings(max_examples=80)
@given(csv_files(), st.lists(step_specs, min_size=1, max_size=3))
def test_csv_rows_profile_and_preprocess_sensibly_or_are_invalid_input(
    content: bytes, specs: list[dict[str, Any]]
) -> None:
    check_file(content, ".csv", specs)
