"""A data file (CSV, JSONL, Parquet) as a pandas DataFrame, for assessments.

pyarrow reads the file (a 100,000-row CSV in tens of milliseconds); the row limit
keeps a caller from making the server hold an unbounded table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelhub.datasets.profile import detect_format
from modelhub.domain.enums import DatasetFormat
from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MAX_ROWS = 2_000_000


def read_frame(
    path: Path, format: str | None = None, max_rows: int = DEFAULT_MAX_ROWS
) -> pd.DataFrame:
    """The file's rows; InvalidInput naming the file when it cannot be read, is empty or
    holds more than `max_rows` rows."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", {"path": str(path)})
    fmt = detect_format(path, format)
    try:
        if fmt is DatasetFormat.CSV:
            table = pa_csv.read_csv(path)
        elif fmt is DatasetFormat.JSONL:
            table = pa_json.read_json(path)
        else:
            table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(
            f"cannot read {path.name} as {fmt.value}: {str(exc)[:300]}", {"path": str(path)}
        ) from None
    if table.num_rows == 0:
        raise InvalidInput(f"{path.name} holds no rows", {"path": str(path)})
    if table.num_rows > max_rows:
        raise InvalidInput(
            f"{path.name} holds {table.num_rows:,} rows; an assessment takes at most {max_rows:,}",
            {"rows": table.num_rows, "limit": max_rows},
        )
    return table.to_pandas()


def require_columns(frame: pd.DataFrame, names: list[str], role: str, source: str) -> None:
    """InvalidInput naming every column of `names` the frame lacks (and what it has)."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        have = ", ".join(map(str, list(frame.columns)[:20]))
        raise InvalidInput(
            f"{role} column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"not in {source} (it has: {have})",
            {"field": role, "missing": missing},
        )
