"""Drift records: a version's reference profile as stored, and the verdicts of a check."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modelhub.domain.records import Record


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    TEXT = "text"
    VECTOR = "vector"  # an embedding or any fixed-width numeric row


class DriftTest(StrEnum):
    KS = "ks"  # scipy.stats.ks_2samp, p-value
    CHI2 = "chi2"  # scipy.stats.chi2_contingency, p-value
    WASSERSTEIN = "wasserstein"  # scipy.stats.wasserstein_distance / reference std
    JENSEN_SHANNON = "jensen_shannon"  # scipy.spatial.distance.jensenshannon
    MMD = "mmd"  # maximum mean discrepancy, permutation p-value


class ReferenceStatus(StrEnum):
    READY = "ready"
    FAILED = "failed"  # profiling the training dataset failed; the error says why


class DriftReference(Record):
    """A version's drift reference as the store keeps it: the profile is an artifact."""

    model: str
    version: int
    status: ReferenceStatus
    digest: str | None = None
    source: str = Field(description="dataset name@version, or the uploaded file's name")
    rows: int = 0
    columns: list[str] = Field(default_factory=list)
    error: str | None = None
    created_by: str
    created_at: datetime


class FeatureVerdict(Record):
    """One feature (an input column or an output) of a live window against its reference."""

    feature: str
    role: str = Field(description="input or output")
    kind: FeatureKind
    test: DriftTest
    statistic: float
    p_value: float | None = Field(None, description="for ks, chi2 and mmd, before correction")
    adjusted_p_value: float | None = Field(None, description="after the multiple-test correction")
    distance: float | None = Field(None, description="for wasserstein and jensen_shannon")
    threshold: float = Field(description="drifted when p < threshold, or distance >= threshold")
    drifted: bool
    psi: float | None = Field(None, description="population stability index, a summary")
    reference_rows: int
    live_rows: int


class DriftReport(Record):
    """The verdicts of one check, with one overall answer corrected for many tests."""

    model: str
    version: int
    reference: str = Field(description="the reference profile's source")
    window_start: datetime | None = None
    window_end: datetime | None = None
    live_rows: int
    correction: str = "benjamini-hochberg"
    features: list[FeatureVerdict] = Field(default_factory=list)
    drifted: bool
    drifted_features: list[str] = Field(default_factory=list)
    share_drifted: float
    skipped: dict[str, str] = Field(
        default_factory=dict, description="features not compared, and why"
    )
