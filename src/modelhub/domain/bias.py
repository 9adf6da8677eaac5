"""What a bias assessment is asked: which columns say who each row is, which is the truth."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from modelhub.domain.records import Record

ColumnName = Annotated[str, Field(min_length=1, max_length=200)]


class BiasOptions(Record):
    """The sensitive columns (each judged alone, and together as intersectional groups),
    the label column with the true class, the positive class of a binary model (default:
    the second in sorted order) and the file's format (default: from its name)."""

    sensitive: list[ColumnName] = Field(min_length=1, max_length=5)
    label: ColumnName
    positive: ColumnName | None = None
    format: str | None = Field(default=None, max_length=16)
