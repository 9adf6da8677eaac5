"""The platform at a glance: the four figures of the dashboard's stat cards and of
`GET /api/v1/overview`, each now and at the end of each of the last seven days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import Field

from modelhub.domain.records import Record

DAYS = 7


class Figure(Record):
    """One figure now, and per day (oldest first, the last day ending now)."""

    value: float | None = Field(description="The figure now; None when nothing is known.")
    days: list[float | None] = Field(
        description=f"The figure per day over the last {DAYS} days, oldest first; "
        "None for a day it cannot be computed."
    )
    change: float | None = Field(
        description="The last day's figure less the first's; None unless both are known."
    )


class Overview(Record):
    generated_at: datetime
    day_ends: list[datetime] = Field(description="Where each day of `days` ends (UTC).")
    models: Figure = Field(description="Models in the registry (per day: at its end).")
    training: Figure = Field(
        description="Runs pending, queued or running now (per day: runs active that day)."
    )
    deployed: Figure = Field(
        description="Live deployments in the production environment (per day: at its end)."
    )
    performance: Figure = Field(
        description="Mean accuracy of the production versions: from feedback where there "
        "is some, else the version's training metric accuracy or val_accuracy."
    )


def figure(days: list[float | None], value: float | None) -> Figure:
    first, last = days[0], days[-1]
    change = last - first if first is not None and last is not None else None
    return Figure(value=value, days=days, change=change)


# -- what the store counts for the overview (aggregate queries, bounded) --------------


@dataclass(frozen=True)
class DailyCounts:
    """Per day end (the same order as asked): models registered by then, runs active
    during the day, production deployments live at its end; and each now."""

    models: list[int]
    active_runs: list[int]
    deployed: list[int]
    models_now: int
    active_runs_now: int
    deployed_now: int


@dataclass(frozen=True)
class ProductionVersion:
    """A version in production (its stage, or served by a live production deployment)."""

    model: str
    version: int
    created_at: datetime
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelledOutcome:
    """A logged prediction with its label, as feedback accuracy scores it."""

    model: str
    version: int
    at: datetime
    kind: str
    prediction: object
    label: object
