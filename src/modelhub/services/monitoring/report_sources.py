"""What the monitor service (and the alert engine's serving metrics: `HistorySource`)
reads from the other monitoring services, as Protocols.

Each Protocol is the part of a lane's signature (docs: the shared seams of issue 11)
that the report reads; the lead wires the real services in `build_services`. Figures
are read as attributes, so any record with these names (pydantic, dataclass) fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ddsketch import DDSketch

    from modelhub.domain.monitoring import PerformanceSummary, Window
    from modelhub.domain.predictions import AccuracySummary


class FeatureVerdict(Protocol):
    @property
    def feature(self) -> str: ...
    @property
    def test(self) -> str: ...
    @property
    def statistic(self) -> float: ...
    @property
    def p_value(self) -> float | None: ...
    @property
    def distance(self) -> float | None: ...
    @property
    def threshold(self) -> float: ...
    @property
    def drifted(self) -> bool: ...


class DriftReport(Protocol):
    """Lane drift's `DriftReport`: per-feature verdicts and the corrected overall one."""

    @property
    def features(self) -> Sequence[FeatureVerdict]: ...
    @property
    def drifted(self) -> bool: ...
    @property
    def drifted_features(self) -> Sequence[str]: ...


class DegradationOutcome(Protocol):
    """One degradation test's outcome (`monitoring/degradation.py`'s Verdict): no
    statistic when the test could not run (too little data)."""

    @property
    def test(self) -> str: ...
    @property
    def statistic(self) -> float | None: ...
    @property
    def p_value(self) -> float | None: ...
    @property
    def worse(self) -> bool: ...


class AlertLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def subject(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def fired_at(self) -> datetime: ...
    @property
    def resolved_at(self) -> datetime | None: ...


class CostSummary(Protocol):
    @property
    def total(self) -> float: ...
    @property
    def currency(self) -> str: ...


# -- the services -------------------------------------------------------------------


class HistorySource(Protocol):
    """Lane history: `HistoryService.performance`."""

    def performance(
        self,
        model: str,
        window: Window,
        version: int | None = None,
        deployment: str | None = None,
    ) -> PerformanceSummary: ...


class AccuracySource(Protocol):
    """Lane predictions: `PredictionService.accuracy`."""

    def accuracy(
        self, model: str, window: Window, version: int | None = None
    ) -> AccuracySummary: ...


class DriftSource(Protocol):
    """Lane drift: `DriftService.check`; NotFound when the version has no reference."""

    def check(self, model: str, version: int, window: Window) -> DriftReport: ...


class DegradationTests(Protocol):
    """Lane canary's tests of a window against a baseline window (pure functions).

    Counts are (requests, errors) for error rates and (labelled, correct) for accuracy.
    """

    def latency(self, baseline: DDSketch, current: DDSketch) -> DegradationOutcome: ...

    def error_rate(
        self, baseline: tuple[int, int], current: tuple[int, int]
    ) -> DegradationOutcome: ...

    def accuracy(
        self, baseline: tuple[int, int], current: tuple[int, int]
    ) -> DegradationOutcome: ...


class AlertFeed(Protocol):
    """Lane alerts: the alerts on a model or its deployments that fired in, or are
    still firing during, a window."""

    def fired(self, model: str, window: Window) -> Sequence[AlertLike]: ...


class CostSource(Protocol):
    """Lane cost: `CostService.model_cost`."""

    def model_cost(self, model: str, window: Window) -> CostSummary: ...
