"""Coverage-guided fuzzing of the "dataset rows" family (issue 19, section 6).

    python fuzz/fuzz_dataset_rows.py fuzz/corpus/dataset_rows/ -max_total_time=60

Every input is a dataset file, read as CSV and as JSONL: `profile_dataset`, then
`preprocess` with one of a few step lists (picked by the input's length). The
contract: a modelhub error or a result file that profiles again; any other exception
is a crash. Needs the `fuzz` extra (atheris).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris
import pyarrow  # noqa: F401  imported before instrumentation: only modelhub is instrumented

with atheris.instrument_imports(include=["modelhub"]):
    from pydantic import TypeAdapter

    from modelhub.datasets.preprocess import preprocess
    from modelhub.datasets.profile import profile_dataset
    from modelhub.domain.enums import DatasetFormat
    from modelhub.domain.pipelines import PreprocessingStep
    from modelhub.errors import ModelhubError

STEPS = TypeAdapter(list[PreprocessingStep])
MENU = [
    STEPS.validate_python(specs)
    for specs in (
        [{"step": "normalize"}],
        [{"step": "normalize", "method": "minmax"}, {"step": "dedupe", "keep": "last"}],
        [{"step": "dedupe"}, {"step": "tokenize", "column": "text", "max_length": 4}],
        [{"step": "filter", "column": "a", "op": ">=", "value": 0}, {"step": "dedupe"}],
    )
]
WORK = Path(tempfile.mkdtemp(prefix="fuzz-dataset-rows-"))


def test_one_input(data: bytes) -> None:
    steps = MENU[len(data) % len(MENU)]
    for fmt in (DatasetFormat.CSV, DatasetFormat.JSONL):
        source = WORK / f"d.{fmt.value}"
        source.write_bytes(data)
        out = WORK / f"out-{fmt.value}"
        try:
            profile_dataset(source)
            result = preprocess(source, fmt, steps, out)
        except ModelhubError:
            continue
        assert profile_dataset(result.path).rows == result.rows_out


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
