"""What an explanation of a version returns: the global ranking, one row's attributions,
and the explainability assessment it was recorded as."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from modelhub.domain.governance import Assessment
from modelhub.domain.limits import NonNegativeInt64
from modelhub.domain.records import Record


class ExplainMethod(StrEnum):
    INTEGRATED_GRADIENTS = "integrated_gradients"
    PERMUTATION = "permutation"


class ExplainOptions(Record):
    """How to explain: the method (default: Integrated Gradients where the version is a
    PyTorch classifier trained here, else permutation), the label column (permutation's
    accuracy; left out of the features), one row to explain locally, IG's baseline."""

    method: ExplainMethod | None = None
    label: str | None = Field(default=None, max_length=256)
    row: NonNegativeInt64 | None = None
    baseline: str = Field(default="mean", pattern="^(mean|zeros)$")
    format: str | None = Field(default=None, max_length=16)


class Importance(Record):
    """One feature (or word) of the global ranking: its importance and spread."""

    feature: str
    importance: float
    std: float


class LocalAttribution(Record):
    feature: str
    value: str | float | None = None  # the row's value of that feature (tabular)
    attribution: float


class LocalExplanation(Record):
    """Why the model answered as it did for one input."""

    row: int
    predicted: str
    attributions: list[LocalAttribution]
    relative_delta: float | None = None


class Explanation(Record):
    model: str
    version: int
    method: ExplainMethod
    score: str  # what the ranking measures
    baseline: str | None = None
    rows: int
    ranking: list[Importance]
    mean_relative_delta: float | None = None
    local: LocalExplanation | None = None
    assessment: Assessment
    chart_png: str = Field(default="", description="the chart, base64-encoded PNG")
