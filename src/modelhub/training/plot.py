"""Training curves drawn as a picture, for `modelhub runs plot`.

One panel per metric, with `x`, `train_x` and `val_x` sharing the panel of `x`; steps on
the horizontal axis. NaN and infinite values leave a gap in their line, and the first one
of each series is marked with a red dotted line, so a reader sees where training went bad.

matplotlib is imported inside the functions (the CLI must start fast) and used through
`Figure` and the Agg canvas directly, so pyplot's global state is never touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = {".png": "png", ".svg": "svg"}
SPLIT_PREFIXES = ("train_", "val_")
PANEL_WIDTH_IN = 8.0
PANEL_HEIGHT_IN = 2.6
DPI = 100
NOT_FINITE_COLOR = "tab:red"
MARKERS_UP_TO = 50  # points in a series; beyond that dots clutter, below a lone value would vanish


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of one metric at one training step."""

    name: str
    step: int
    value: float


def group_metrics(points: Sequence[MetricPoint]) -> dict[str, list[str]]:
    """Decide the panels: panel title -> metric names drawn on it, in first-seen order.

    `loss`, `train_loss` and `val_loss` all go to the `loss` panel; any other name
    (`learning_rate`, `samples_per_s`) gets a panel of its own.
    """
    panels: dict[str, list[str]] = {}
    for point in points:
        names = panels.setdefault(_panel_of(point.name), [])
        if point.name not in names:
            names.append(point.name)
    return panels


def plot_curves(points: Sequence[MetricPoint], out: Path, title: str = "") -> Path:
    """Draw `points` into `out` (PNG, or SVG when it ends in .svg) and return `out`.

    Raises InvalidInput when `out` has another suffix or when there are no points.
    """
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(FORMATS)
        raise InvalidInput(
            f"unsupported picture suffix {suffix or '(none)'}; supported: {supported}",
            {"suffix": suffix, "supported": list(FORMATS)},
        )
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = draw_figure(points, title)
    FigureCanvasAgg(figure).print_figure(out, format=FORMATS[suffix], dpi=DPI)
    return out


def draw_figure(points: Sequence[MetricPoint], title: str = "") -> Figure:
    """Build the figure `plot_curves` saves; raises InvalidInput when there are no points."""
    if not points:
        raise InvalidInput("no metrics yet")
    from matplotlib.figure import Figure

    panels = group_metrics(points)
    figure = Figure(
        figsize=(PANEL_WIDTH_IN, PANEL_HEIGHT_IN * len(panels)), dpi=DPI, layout="constrained"
    )
    if title:
        figure.suptitle(title)
    first: Axes | None = None
    for index, (panel, names) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(len(panels), 1, index, sharex=first)
        first = first or axes
        series = {name: sorted((p for p in points if p.name == name), key=_step) for name in names}
        for name, values in series.items():
            _draw_line(axes, name, values)
        for name, values in series.items():
            _mark_first_non_finite(axes, name, values)
        axes.set_ylabel(panel)
        axes.grid(True, alpha=0.3)
        axes.legend(loc="best", fontsize="small")
    figure.axes[-1].set_xlabel("step")
    return figure


def _draw_line(axes: Axes, name: str, series: list[MetricPoint]) -> None:
    # NaN leaves a gap in a matplotlib line, so the break stays visible.
    values = [p.value if math.isfinite(p.value) else math.nan for p in series]
    if any(math.isfinite(v) for v in values):
        marker = "o" if len(series) <= MARKERS_UP_TO else ""
        axes.plot([p.step for p in series], values, label=name, marker=marker, markersize=3)


def _mark_first_non_finite(axes: Axes, name: str, series: list[MetricPoint]) -> None:
    bad = next((p for p in series if not math.isfinite(p.value)), None)
    if bad is not None:
        axes.axvline(
            bad.step,
            color=NOT_FINITE_COLOR,
            linestyle=":",
            label=f"{name} = {bad.value} at step {bad.step}",
        )


def _step(point: MetricPoint) -> int:
    return point.step


def _panel_of(name: str) -> str:
    for prefix in SPLIT_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name.removeprefix(prefix)
    return name
