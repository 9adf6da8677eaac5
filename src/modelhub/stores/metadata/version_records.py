"""Version records rebuilt from rows this store wrote, without validating them twice.

Every value in a version row was validated when its record went in, so on the read
path (a search hydrates 50 versions a call) it is not validated again: the record's
fields are filled directly, as pydantic's `model_construct` does, but without its
per-field default handling. The JSON columns arrive as their stored text, and the
records already built are kept by the exact values they were built from (the row,
its files and its aliases): a row that changed in any way is a different key, so a
kept record is never stale, whichever server wrote the change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from modelhub.domain.enums import Approval, Framework, ModelStatus, ModelType, Precision, Stage
from modelhub.domain.records import (
    FileEntry,
    Lineage,
    ModelVersion,
    ResourceEstimate,
    Signature,
    TensorSpec,
)

R = TypeVar("R", bound=BaseModel)

# Records kept: a few thousand versions' worth of hot lookups, about 2 KiB each.
KEPT_RECORDS = 4096
JSON_COLUMNS = frozenset({"signature", "inspection", "resources", "lineage", "metrics"})

_SET = object.__setattr__
_LINEAGE_DEFAULTS = Lineage().model_dump()

FileRow = tuple[str, str, int]  # path, digest, size


def trusted(cls: type[R], values: dict[str, Any]) -> R:
    """A `cls` holding `values`, which must name every field with a valid value."""
    record = cls.__new__(cls)
    _SET(record, "__dict__", values)
    _SET(record, "__pydantic_fields_set__", set(values))
    _SET(record, "__pydantic_extra__", None)
    _SET(record, "__pydantic_private__", None)
    return record


class VersionRecords:
    """Builds records from rows of one statement's columns, keeping the recent ones."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.build = lru_cache(maxsize=KEPT_RECORDS)(self._build)

    def forget(self) -> None:
        """Drop every kept record (to measure the cost of building them)."""
        self.build.cache_clear()

    def record(
        self, row: tuple[Any, ...], files: tuple[FileRow, ...], alias_names: tuple[str, ...]
    ) -> ModelVersion:
        return self.build(tuple(row), files, alias_names)

    def _build(
        self, row: tuple[Any, ...], files: tuple[FileRow, ...], alias_names: tuple[str, ...]
    ) -> ModelVersion:
        v = dict(zip(self.columns, row, strict=True))
        for name in JSON_COLUMNS:
            if isinstance(v[name], str):  # stored text; a driver may hand back parsed JSON
                v[name] = json.loads(v[name])
        is_latest = v["latest_version"] == v["version"]
        return trusted(
            ModelVersion,
            {
                "name": v["name"],
                "version": v["version"],
                "label": v["label"],
                "type": ModelType(v["type"]),
                "framework": Framework(v["framework"]),
                "architecture": v["architecture"],
                "parameters": v["parameters"],
                "size": v["size"],
                "precision": Precision(v["precision"]),
                "quantization": v["quantization"],
                "context_length": v["context_length"],
                "digest": v["digest"],
                "files": [
                    trusted(FileEntry, {"path": path, "digest": digest, "size": size})
                    for path, digest, size in files
                ],
                "signature": _signature(v["signature"]),
                "inspection": v["inspection"],
                "resources": trusted(ResourceEstimate, v["resources"]) if v["resources"] else None,
                "lineage": trusted(Lineage, _LINEAGE_DEFAULTS | v["lineage"]),
                "metrics": {key: float(value) for key, value in v["metrics"].items()},
                "stage": Stage(v["stage"]),
                "approval": Approval(v["approval"]),
                "approval_note": v["approval_note"],
                "trusted": bool(v["trusted"]),
                "aliases": sorted([*alias_names, "latest"] if is_latest else alias_names),
                "model_card": v["model_card"],
                "status": ModelStatus(v["status"]),
                "created_at": _aware(v["created_at"]),
                "created_by": v["created_by"],
            },
        )


def _signature(stored: dict[str, Any]) -> Signature:
    return trusted(
        Signature,
        {
            "inputs": [_tensor(spec) for spec in stored.get("inputs", ())],
            "outputs": [_tensor(spec) for spec in stored.get("outputs", ())],
        },
    )


def _tensor(spec: dict[str, Any]) -> TensorSpec:
    return trusted(
        TensorSpec,
        {
            "name": spec["name"],
            "dtype": spec["dtype"],
            "shape": spec["shape"],
            "private": bool(spec.get("private", False)),  # absent in rows before issue 11
        },
    )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
