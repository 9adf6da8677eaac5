"""Numbers, sizes and times as people read them: 1.2K, 87.4 MB, 3 min ago.

Registered as Jinja filters by `render`; pure functions, tested on their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

_COUNT_UNITS = ("", "K", "M", "B", "T")
MISSING = "\u2013"  # an en dash: what a figure shows when there is none

_BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_count(value: float | int | None) -> str:
    """1234 -> 1.2K; 999 -> 999; 1_500_000 -> 1.5M."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 1000:
        return f"{sign}{value:.0f}" if float(value).is_integer() else f"{sign}{value:.3g}"
    exponent = min(int(math.log10(value) // 3), len(_COUNT_UNITS) - 1)
    scaled = value / 1000**exponent
    if round(scaled, 1) >= 1000 and exponent < len(_COUNT_UNITS) - 1:
        exponent, scaled = exponent + 1, scaled / 1000
    return f"{sign}{scaled:.1f}".rstrip("0").rstrip(".") + _COUNT_UNITS[exponent]


def human_bytes(value: float | int | None) -> str:
    """87_400_000 -> 87.4 MB (powers of 1000, as disks and networks count)."""
    if value is None:
        return MISSING
    size = float(value)
    for unit in _BYTE_UNITS:
        if abs(size) < 1000 or unit == _BYTE_UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: float | timedelta | None) -> str:
    """95 -> 1 min 35 s; 0.0123 -> 12.3 ms; 7200 -> 2 h."""
    if seconds is None:
        return MISSING
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if seconds < 0:
        return MISSING
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d"


def time_ago(moment: datetime | None, now: datetime | None = None) -> str:
    """3 min ago, 2 h ago, yesterday's date as 2026-12-06, 'in 5 min' for the future."""
    if moment is None:
        return "never"
    now = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = (now - moment).total_seconds()
    if abs(delta) < 45:
        return "just now"
    ahead = delta < 0
    delta = abs(delta)
    if delta < 3600:
        text = f"{round(delta / 60)} min"
    elif delta < 86400:
        text = f"{round(delta / 3600)} h"
    elif delta < 7 * 86400:
        days = round(delta / 86400)
        text = f"{days} day" + ("s" if days != 1 else "")
    else:
        return moment.strftime("%Y-%m-%d")
    return f"in {text}" if ahead else f"{text} ago"


def percent(value: float | None, digits: int = 1) -> str:
    """0.874 -> 87.4 %."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value * 100:.{digits}f} %"


def when(moment: datetime | None) -> Markup:
    """A <time> element: the relative time as text, the exact one as its title."""
    if moment is None:
        return Markup("never")
    exact = moment.isoformat(timespec="seconds")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(
        escape(exact), escape(time_ago(moment))
    )


def sparkline(values: Sequence[float | int | None], label: str, width: int = 96) -> Markup:
    """A small inline SVG line over `values` (None for a gap), labelled for screen readers."""
    height = 24
    points = [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    title = escape(label)
    if len(points) < 2:
        return Markup(
            '<svg class="sparkline" role="img" aria-label="{0}" width="{1}" height="{2}"></svg>'
        ).format(title, width, height)
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    path = " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in points
    )
    return Markup(
        '<svg class="sparkline" role="img" aria-label="{0}" width="{1}" height="{2}" '
        'viewBox="0 0 {1} {2}"><polyline fill="none" stroke="currentColor" '
        'stroke-width="1.5" points="{3}"/></svg>'
    ).format(title, width, height, path)
