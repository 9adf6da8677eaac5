"""The platform at a glance: what the dashboard's stat cards and `GET /api/v1/overview`
show. A handful of aggregate queries, whatever the number of models, versions and runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from modelhub.domain.auth import Action, Caller
from modelhub.domain.overview import DAYS, Overview, ProductionVersion, figure
from modelhub.domain.predictions import metric_for, row_scores
from modelhub.services.auth import AuthService
from modelhub.stores.metadata.base import MetadataStore

# The training metrics that stand for a version's accuracy, in order of preference.
ACCURACY_METRICS = ("accuracy", "val_accuracy")
Scores = dict[tuple[str, int], list[float]]


def _now() -> datetime:
    return datetime.now(UTC)


def day_starts(now: datetime, days: int = DAYS) -> list[datetime]:
    """Midnight (UTC) of each of the last `days` days, today last."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def trained_accuracy(version: ProductionVersion) -> float | None:
    for name in ACCURACY_METRICS:
        if name in version.metrics:
            return version.metrics[name]
    return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class OverviewService:
    def __init__(
        self, metadata: MetadataStore, auth: AuthService, clock: Callable[[], datetime] = _now
    ) -> None:
        self.metadata = metadata
        self.auth = auth
        self.clock = clock

    def figures(self, caller: Caller) -> Overview:
        self.auth.authorize(caller, Action.MODELS_READ)
        now = self.clock()
        starts = day_starts(now)
        ends = [*starts[1:], now]
        counts = self.metadata.daily_counts(starts, now)
        production = self.metadata.production_versions()
        pairs = [(v.model, v.version) for v in production]
        outcomes = self.metadata.labelled_outcomes(pairs, starts[0], now) if pairs else []
        overall: Scores = defaultdict(list)
        per_day: list[Scores] = [defaultdict(list) for _ in starts]
        for outcome in outcomes:
            if metric_for(outcome.kind) != "accuracy":
                continue  # an error in numbers is not an accuracy
            key = (outcome.model, outcome.version)
            scores = row_scores(outcome.kind, outcome.prediction, outcome.label)
            overall[key].extend(scores)
            day = max(i for i, start in enumerate(starts) if start <= outcome.at)
            per_day[day][key].extend(scores)
        performance_days = [
            self._accuracy(production, per_day[i], end) for i, end in enumerate(ends)
        ]
        return Overview(
            generated_at=now,
            day_ends=ends,
            models=figure([float(n) for n in counts.models], counts.models_now),
            training=figure([float(n) for n in counts.active_runs], counts.active_runs_now),
            deployed=figure([float(n) for n in counts.deployed], counts.deployed_now),
            performance=figure(performance_days, self._accuracy(production, overall, now)),
        )

    @staticmethod
    def _accuracy(
        production: list[ProductionVersion], feedback: Scores, by: datetime
    ) -> float | None:
        """The mean over the production versions that existed `by` of each one's
        accuracy: from `feedback` where it has some, else from its training metric."""
        values = []
        for version in production:
            if version.created_at > by:
                continue
            measured = _mean(feedback.get((version.model, version.version), []))
            value = measured if measured is not None else trained_accuracy(version)
            if value is not None:
                values.append(value)
        return _mean(values)
