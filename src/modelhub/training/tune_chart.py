"""A study's chart as one standalone SVG: optimisation history above, parameter importance below.

The history plots each finished trial's value by trial number (complete in blue,
pruned in amber at their last reported value) and the best value so far as a line;
the importance is a bar per parameter. Same look as the monitoring report's charts
(monitoring/svg_charts.py); no script, no network, every text escaped.
"""

from __future__ import annotations

import itertools
from html import escape

from modelhub.domain.tuning import Study, TrialState

WIDTH, PANEL, ROW = 640, 220, 22
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 30, 30
PAD = 8  # keeps the first and last points off the axes
BLUE, AMBER, RED, GREEN = "#2563eb", "#d97706", "#dc2626", "#059669"
STYLE = (
    "<style>text{font:11px sans-serif;fill:#374151}.title{font-weight:600;font-size:12px}"
    ".axis{stroke:#9ca3af}</style>"
)


def study_chart(study: Study) -> str:
    """The SVG text of `study`'s history and importance panels (a pruned trial's value
    is its last reported one)."""
    history = _history(study)
    importance = _importance(study)
    height = PANEL + TOP + ROW * max(len(study.importance), 1) + 12
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img">{STYLE}'
        f'{history}<g transform="translate(0,{PANEL})">{importance}</g></svg>'
    )


def _history(study: Study) -> str:
    title = f"{study.name}: {study.metric} by trial ({study.direction})"
    parts = [f'<text x="{LEFT}" y="16" class="title">{escape(title)}</text>']
    colours = {TrialState.COMPLETE: BLUE, TrialState.PRUNED: AMBER}
    points = [
        (t.number, t.value, colours[t.state])
        for t in study.trial_list
        if t.state in colours and t.value is not None
    ]
    if not points:
        return parts[0] + f'<text x="{LEFT}" y="{PANEL // 2}">no finished trial yet</text>'
    values = [v for _, v, _ in points]
    low, high = min(values), max(values)
    if high <= low:
        high = low + 1.0
    last = max(t.number for t in study.trial_list) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT - 2 * PAD, PANEL - TOP - BOTTOM - 2 * PAD

    def x(number: int) -> float:
        return LEFT + PAD + plot_w * number / last

    def y(value: float) -> float:
        return TOP + PAD + plot_h * (1 - (value - low) / (high - low))

    bottom = PANEL - BOTTOM
    parts += [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" class="axis"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{_number(high)}</text>',
        f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end">{_number(low)}</text>',
        f'<text x="{LEFT}" y="{PANEL - 10}">trial 0</text>',
        f'<text x="{WIDTH - RIGHT}" y="{PANEL - 10}" text-anchor="end">trial {last}</text>',
    ]
    for number, value, colour in points:
        parts.append(f'<circle cx="{x(number):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}"/>')
    best: list[tuple[int, float]] = []
    pick = min if study.direction == "minimize" else max
    for number, value, colour in sorted(points):
        if colour == BLUE:
            best.append((number, value if not best else pick(best[-1][1], value)))
    if len(best) > 1:  # a step line: the best holds until a trial beats it
        steps = [best[0]]
        for (_, before), (number, value) in itertools.pairwise(best):
            steps += [(number, before), (number, value)]
        steps.append((last, best[-1][1]))
        coords = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in steps)
        parts.append(f'<polyline fill="none" stroke="{RED}" points="{coords}"/>')
    for offset, (label, colour) in enumerate(
        (("complete", BLUE), ("pruned", AMBER), ("best so far", RED))
    ):
        legend_x = WIDTH - RIGHT - 80 * (3 - offset)
        parts.append(f'<text x="{legend_x}" y="16" fill="{colour}">{label}</text>')
    return "".join(parts)


def _importance(study: Study) -> str:
    parts = [f'<text x="{LEFT}" y="16" class="title">parameter importance</text>']
    if not study.importance:
        note = "needs at least two complete trials that differ"
        return parts[0] + f'<text x="{LEFT}" y="{TOP + 12}">{note}</text>'
    ranked = sorted(study.importance.items(), key=lambda item: -item[1])
    row = float(ROW)
    left = LEFT + 80
    span = WIDTH - left - RIGHT - 50
    for index, (name, share) in enumerate(ranked):
        top = TOP + index * row
        width = max(share, 0.0) * span
        parts.append(
            f'<text x="{left - 6}" y="{top + row * 0.65:.1f}" text-anchor="end">'
            f"{escape(name[:24])}</text>"
            f'<rect x="{left}" y="{top + 2:.1f}" width="{width:.1f}" '
            f'height="{row - 4:.1f}" fill="{GREEN}"/>'
            f'<text x="{left + width + 4:.1f}" y="{top + row * 0.65:.1f}">{share:.2f}</text>'
        )
    return "".join(parts)


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
