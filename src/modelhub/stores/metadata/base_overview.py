"""The metadata store's overview part: counts for the platform's stat cards, each one
aggregate query whatever the number of rows."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from modelhub.domain.overview import DailyCounts, LabelledOutcome, ProductionVersion


class OverviewStore(abc.ABC):
    @abc.abstractmethod
    def daily_counts(self, day_starts: Sequence[datetime], now: datetime) -> DailyCounts:
        """Counts per day [day_starts[i], day_starts[i + 1]), the last day ending `now`."""

    @abc.abstractmethod
    def production_versions(self) -> list[ProductionVersion]:
        """Versions whose stage is production, and versions live production
        deployments serve."""

    @abc.abstractmethod
    def labelled_outcomes(
        self, versions: Sequence[tuple[str, int]], start: datetime, end: datetime
    ) -> list[LabelledOutcome]:
        """The labelled logged predictions of these (model, version) pairs in [start, end)
        (one query: the pairs are picked from the window's labelled predictions)."""
