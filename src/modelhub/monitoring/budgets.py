"""Budget arithmetic: the calendar month a budget counts over and the thresholds crossed."""

from __future__ import annotations

from datetime import UTC, datetime

from modelhub.domain.monitoring import Window

THRESHOLDS = (80, 100)


def month_of(now: datetime) -> Window:
    """The calendar month (UTC) holding `now`, from its first instant to the next month's."""
    now = now.astimezone(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return Window(start, end)


def month_label(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y-%m}"


def crossed(spent: float, monthly: float, thresholds: tuple[int, ...] = THRESHOLDS) -> list[int]:
    """The thresholds (percent of `monthly`) that `spent` has reached, lowest first."""
    if monthly <= 0:
        return []
    return [t for t in sorted(thresholds) if spent >= monthly * t / 100.0]
