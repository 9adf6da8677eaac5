"""Automated canary analysis: what it decided about one canary, and on what evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modelhub.domain.degradation import Verdict
from modelhub.domain.deployments import CanaryAnalysis
from modelhub.domain.records import Record


class CanaryOutcome(StrEnum):
    PROMOTE = "promote"  # not worse on any tested figure: all traffic to the canary
    ROLLBACK = "rollback"  # worse on at least one: all traffic back to stable
    INCONCLUSIVE = "inconclusive"  # too few requests in the time allowed: a person decides


class VersionFigures(Record):
    """What one side served between the canary's start and the decision."""

    version: int
    requests: int
    errors: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    labelled: int = 0
    correct: int = 0


class CanaryDecision(Record):
    """One decision of the analysis about one canary (at most one per canary start)."""

    id: int | None = None
    deployment: str
    model: str
    stable: VersionFigures
    canary: VersionFigures
    outcome: CanaryOutcome
    reason: str
    verdicts: list[Verdict]
    started_at: datetime
    decided_at: datetime


class CanaryStatus(Record):
    """A deployment's automated canary: the one in place (if any) and the decisions."""

    deployment: str
    analysis: CanaryAnalysis | None = None  # of the canary in place, when automated
    latest: CanaryDecision | None = None
    decisions: list[CanaryDecision] = Field(default_factory=list)  # newest first
