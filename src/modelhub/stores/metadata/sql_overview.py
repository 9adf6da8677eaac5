"""The overview's counts in SQL: one aggregate query per table, a column per day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from modelhub.domain.deployments import LIVE, Environment
from modelhub.domain.enums import Stage
from modelhub.domain.overview import DailyCounts, LabelledOutcome, ProductionVersion
from modelhub.domain.runs import ACTIVE
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware
from modelhub.stores.metadata.tables import deployments, models, prediction_records, runs, versions

LIVE_STATUSES = sorted(s.value for s in LIVE)
ACTIVE_STATUSES = sorted(s.value for s in ACTIVE)


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _served_versions(traffic: Any) -> list[int]:
    shares = traffic if isinstance(traffic, list) else []
    return [int(s["version"]) for s in shares if isinstance(s, dict) and "version" in s]


class OverviewQueries(SqlStoreBase):
    def daily_counts(self, day_starts: Sequence[datetime], now: datetime) -> DailyCounts:
        starts = [at.astimezone(UTC) for at in day_starts]
        ends = [*starts[1:], now.astimezone(UTC)]
        m, r, d = models.c, runs.c, deployments.c
        model_counts = select(
            *(_count(m.created_at < end) for end in ends), func.count()
        ).select_from(models)
        # A run is active on a day when it was made before the day ended and had not
        # finished before it began.
        run_counts = select(
            *(
                _count(
                    and_(r.created_at < end, or_(r.finished_at.is_(None), r.finished_at >= start))
                )
                for start, end in zip(starts, ends, strict=True)
            ),
            _count(r.status.in_(ACTIVE_STATUSES)),
        ).select_from(runs)
        # A stopped deployment's last change is when it stopped.
        live = d.status.in_(LIVE_STATUSES)
        deployment_counts = (
            select(
                *(_count(and_(d.created_at < end, or_(live, d.updated_at >= end))) for end in ends),
                _count(live),
            )
            .select_from(deployments)
            .where(d.environment == Environment.PRODUCTION.value)
        )
        with self._read() as conn:
            *model_days, models_now = conn.execute(model_counts).one()
            *run_days, runs_now = conn.execute(run_counts).one()
            *deployed_days, deployed_now = conn.execute(deployment_counts).one()
        return DailyCounts(
            models=[int(n) for n in model_days],
            active_runs=[int(n) for n in run_days],
            deployed=[int(n) for n in deployed_days],
            models_now=int(models_now),
            active_runs_now=int(runs_now),
            deployed_now=int(deployed_now),
        )

    def production_versions(self) -> list[ProductionVersion]:
        v, d = versions.c, deployments.c
        columns = (models.c.name, v.version, v.created_at, v.metrics)
        joined = versions.join(models, models.c.id == v.model_id)
        staged = select(*columns).select_from(joined).where(v.stage == Stage.PRODUCTION.value)
        served_query = select(d.model, d.traffic).where(
            d.environment == Environment.PRODUCTION.value, d.status.in_(LIVE_STATUSES)
        )
        # The versions of models live production deployments serve (one query; the
        # versions they do not serve are dropped here, as traffic is JSON).
        of_served_models = (
            select(*columns)
            .select_from(joined.join(deployments, d.model == models.c.name))
            .where(d.environment == Environment.PRODUCTION.value, d.status.in_(LIVE_STATUSES))
        )
        with self._read() as conn:
            found = {(row.name, row.version): row for row in conn.execute(staged)}
            served = {
                (row.model, number)
                for row in conn.execute(served_query)
                for number in _served_versions(row.traffic)
            }
            for row in conn.execute(of_served_models):
                if (row.name, row.version) in served:
                    found[(row.name, row.version)] = row
        return [
            ProductionVersion(
                model=row.name,
                version=row.version,
                created_at=_aware(row.created_at),
                metrics={
                    str(k): float(x)
                    for k, x in (row.metrics or {}).items()
                    if isinstance(x, int | float) and not isinstance(x, bool)
                },
            )
            for _, row in sorted(found.items())
        ]

    def labelled_outcomes(
        self, versions_of: Sequence[tuple[str, int]], start: datetime, end: datetime
    ) -> list[LabelledOutcome]:
        t = prediction_records.c
        wanted = set(versions_of)
        query = select(t.model, t.version, t.at, t.kind, t.prediction, t.label).where(
            t.label.is_not(None), t.at >= start, t.at < end
        )
        with self._read() as conn:
            return [
                LabelledOutcome(
                    model=row.model,
                    version=row.version,
                    at=_aware(row.at),
                    kind=row.kind,
                    prediction=row.prediction,
                    label=row.label,
                )
                for row in conn.execute(query)
                if (row.model, row.version) in wanted
            ]
