"""Small inline SVG line charts for the HTML report: no script, no network, text escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 26, 28
COLOURS = ("#2563eb", "#d97706", "#dc2626", "#059669")

Point = tuple[datetime, float | None]


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    unit: str,
    floor_zero: bool = True,
) -> str:
    """One chart of one or more named series over time; None values break a line."""
    values = [v for points in series.values() for _, v in points if v is not None]
    times = [t for points in series.values() for t, _ in points]
    heading = f'<text x="{LEFT}" y="16" class="title">{escape(title)}</text>'
    if not values or not times:
        return _svg(heading + f'<text x="{LEFT}" y="{HEIGHT // 2}">no data</text>')
    low = 0.0 if floor_zero else min(values)
    high = max(values)
    if high <= low:
        high = low + 1.0
    start, end = min(times), max(times)
    span = (end - start).total_seconds() or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - low) / (high - low))

    parts = [heading, _axes(low, high, unit, start, end)]
    for index, (name, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        for segment in _segments(points):
            if len(segment) == 1:
                at, value = segment[0]
                parts.append(
                    f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="2" fill="{colour}"/>'
                )
                continue
            coords = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in segment)
            parts.append(f'<polyline fill="none" stroke="{colour}" points="{coords}"/>')
        legend_x = WIDTH - RIGHT - 90 * (len(series) - index)
        parts.append(
            f'<text x="{legend_x}" y="16" fill="{colour}" class="legend">{escape(name)}</text>'
        )
    return _svg("".join(parts))


def _segments(points: Sequence[Point]) -> list[list[tuple[datetime, float]]]:
    segments: list[list[tuple[datetime, float]]] = [[]]
    for at, value in sorted(points, key=lambda point: point[0]):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((at, value))
    return [segment for segment in segments if segment]


def _axes(low: float, high: float, unit: str, start: datetime, end: datetime) -> str:
    bottom = HEIGHT - BOTTOM
    return (
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/>'
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" class="axis"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{_number(high)}</text>'
        f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end">{_number(low)}</text>'
        f'<text x="{LEFT - 4}" y="{TOP + 16}" text-anchor="end">{escape(unit)}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 8}">{start:%Y-%m-%d %H:%M}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">'
        f"{end:%Y-%m-%d %H:%M} UTC</text>"
    )


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _svg(body: str) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img">{body}</svg>'
    )
