"""Prediction log and feedback records, and the rules that join labels to predictions.

A deployment samples a share of its requests (`PredictionLogPolicy`); each sampled
request is logged with its id, version, latency, time, inputs and outputs. The
*prediction* of a logged row is one value the feedback is compared with
(`prediction_of`): the `label` output where the model has one, else the one output
with a single value per row, else the arg-max of the first score matrix. A
request of one row has a scalar prediction; a request of N rows a list of N.

Feedback (`{"request_id": ..., "label": ...}` lines) must have the prediction's
shape and kind: a class name for a string prediction, an integer class for an
integer one, a number for a regression value. A file with any bad line is refused
whole, naming every bad line, and nothing is stored.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from pydantic import Field

from modelhub.domain.records import Record
from modelhub.errors import InvalidInput

DEFAULT_LOG_RATE = 0.1
DEFAULT_LOG_MAX_PER_MINUTE = 600
MAX_BAD_LINES_SHOWN = 20
# Where the text of a request id may come from (a client's OIP body): printable, short.
MAX_REQUEST_ID_LENGTH = 128


class PredictionLogPolicy(Record):
    """How much of a deployment's traffic is logged: `rate` of the requests (0 turns the
    log off), at most `max_per_minute` of them in any minute."""

    rate: float = Field(default=DEFAULT_LOG_RATE, ge=0.0, le=1.0)
    max_per_minute: int = Field(default=DEFAULT_LOG_MAX_PER_MINUTE, ge=0, le=1_000_000)


class PredictionLogFile(Record):
    """One closed Parquet file of sampled requests, as stored in the artifact store."""

    digest: str
    deployment: str
    model: str
    version: int
    rows: int
    requests: int
    size: int
    first_at: datetime
    last_at: datetime
    ingested_at: datetime


class LoggedPrediction(Record):
    """One sampled request: its id, where it went, what it answered, and its label."""

    request_id: str
    model: str
    version: int
    deployment: str
    at: datetime
    latency_ms: float
    rows: int
    prediction: Any = None
    # What the prediction is, decided from the replica's exact values (a database's
    # JSON may read 1.0 back as 1): "class" (a name), "index" (an integer class) or
    # "number" (a regression value).
    kind: str = "number"
    label: Any = None
    labelled_at: datetime | None = None
    file_digest: str


class LabelDraft(Record):
    """A checked label for one logged request (the store writes these)."""

    request_id: str
    label: Any


class FeedbackOutcome(Record):
    """What a feedback file did: labels stored (new and replacing), ids never logged."""

    model: str
    lines: int
    stored: int
    replaced: int
    unknown: int
    unknown_ids: list[str] = Field(default_factory=list)


class AccuracyPoint(Record):
    """The metric over one bucket of time (labelled rows only)."""

    start: datetime
    value: float
    labelled: int


class VersionAccuracy(Record):
    version: int
    value: float | None
    labelled: int
    predictions: int
    series: list[AccuracyPoint] = Field(default_factory=list)


class AccuracySummary(Record):
    """Accuracy (classification) or mean absolute error (regression) from feedback.

    `value` is None when no logged prediction in the window has a label;
    `labelled` counts labelled rows, `predictions` logged rows."""

    model: str
    metric: str
    value: float | None
    labelled: int
    predictions: int
    start: datetime
    end: datetime
    per_version: list[VersionAccuracy] = Field(default_factory=list)
    series: list[AccuracyPoint] = Field(default_factory=list)


def prediction_of(outputs: dict[str, Any]) -> list[Any]:
    """One prediction per row from a model's outputs (numpy arrays), as plain values."""
    if "label" in outputs:
        chosen = outputs["label"]
    else:
        single = [a for a in outputs.values() if a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)]
        if single:
            chosen = single[0].reshape(-1)
        else:
            matrix = next(iter(outputs.values()))
            chosen = matrix.reshape(matrix.shape[0], -1).argmax(axis=1)
    values: list[Any] = chosen.reshape(-1).tolist()
    return values


def kind_of(value: Any) -> str:
    """'class' (a name), 'index' (an integer class) or 'number' (a regression value)."""
    if isinstance(value, list):
        return kind_of(value[0]) if value else "number"
    if isinstance(value, str):
        return "class"
    if isinstance(value, int) and not isinstance(value, bool):
        return "index"
    return "number"


def label_problem(kind: str, prediction: Any, label: Any) -> str | None:
    """Why `label` cannot be compared with `prediction` (of `kind`), or None when it can."""
    if isinstance(prediction, list):
        if not isinstance(label, list) or len(label) != len(prediction):
            return (
                f"the request had {len(prediction)} rows: give a list of {len(prediction)} labels"
            )
        for row, (p, one) in enumerate(zip(prediction, label, strict=True)):
            problem = label_problem(kind, p, one)
            if problem is not None:
                return f"row {row}: {problem}"
        return None
    if kind == "class" and not isinstance(label, str):
        return f"the model predicts class names: {json.dumps(label)} is not a string"
    if kind == "index" and (
        isinstance(label, bool)
        or not isinstance(label, int | float)
        or (isinstance(label, float) and not label.is_integer())
    ):
        return f"the model predicts class numbers: {json.dumps(label)} is not an integer"
    if kind == "number" and (
        isinstance(label, bool)
        or not isinstance(label, int | float)
        or not math.isfinite(float(label))
    ):
        return f"the model predicts numbers: {json.dumps(label)} is not a finite number"
    return None


def parse_feedback_line(text: str, number: int) -> tuple[str, Any]:
    """(request_id, label) of one JSONL line; InvalidInput naming the line when malformed."""
    try:
        item = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or a number too long to read
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidInput(f"line {number}: not JSON ({reason})", {"line": number}) from None
    if not isinstance(item, dict) or set(item) - {"request_id", "label"}:
        raise InvalidInput(
            f'line {number}: expected {{"request_id": ..., "label": ...}}', {"line": number}
        )
    request_id = item.get("request_id")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID_LENGTH:
        raise InvalidInput(
            f"line {number}: request_id must be a non-empty string of at most "
            f"{MAX_REQUEST_ID_LENGTH} characters",
            {"line": number},
        )
    if "label" not in item or item["label"] is None:
        raise InvalidInput(f"line {number}: label is missing", {"line": number})
    return request_id, item["label"]


def metric_for(kind: str) -> str:
    return "mae" if kind == "number" else "accuracy"


def row_scores(kind: str, prediction: Any, label: Any) -> list[float]:
    """Per row: 1.0/0.0 for a hit or a miss (classes), the absolute error (numbers)."""
    predictions = prediction if isinstance(prediction, list) else [prediction]
    labels = label if isinstance(label, list) else [label]
    if kind == "number":
        return [abs(float(p) - float(y)) for p, y in zip(predictions, labels, strict=True)]
    if kind == "index":
        return [float(int(p) == int(y)) for p, y in zip(predictions, labels, strict=True)]
    return [float(p == y) for p, y in zip(predictions, labels, strict=True)]
