"""The bias chart: per group, selection rate and error rates, one panel per grouping.

Drawn with matplotlib's Agg backend (no display) into PNG bytes. For a multiclass model
the panels show the class that decided the verdict (its worst one-vs-rest gap).
"""

from __future__ import annotations

import io
from typing import Any

MAX_BARS = 24  # groups drawn per panel, the largest first; the figures keep them all
SERIES = (
    ("selection_rate", "selection rate", "#4C72B0"),
    ("false_positive_rate", "false positive rate", "#DD8452"),
    ("false_negative_rate", "false negative rate", "#C44E52"),
)


def render_chart(figures: dict[str, Any]) -> bytes:
    """A PNG of the figures `governance.bias.assess` made."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    groupings = figures["groupings"]
    height = 2.8 * len(groupings) + 0.6
    fig = Figure(figsize=(9, height), dpi=80)
    # Fixed margins: a layout engine would draw the figure twice to measure it.
    fig.subplots_adjust(
        left=0.07, right=0.98, top=1 - 0.45 / height, bottom=0.7 / height, hspace=1.1
    )
    axes = fig.subplots(len(groupings), 1, squeeze=False)[:, 0]
    for ax, grouping in zip(axes, groupings, strict=True):
        shown = _deciding_class(grouping, figures)
        groups = sorted(grouping["groups"], key=lambda g: -g["size"])[:MAX_BARS]
        width = 0.8 / len(SERIES)
        for i, (key, label, colour) in enumerate(SERIES):
            values = [g["rates"].get(shown, {}).get(key) or 0.0 for g in groups]
            xs = [j + (i - 1) * width for j in range(len(groups))]
            ax.bar(xs, values, width, label=label, color=colour)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(
            [f"{g['group']}\n{g['size']:,}{'' if g['judged'] else ' (small)'}" for g in groups],
            fontsize=7 if len(groups) <= 8 else 6,
            rotation=0 if len(groups) <= 8 else 50,
            ha="center" if len(groups) <= 8 else "right",
        )
        ax.set_ylim(0, 1)
        verdict = "pass" if all(w["passed"] for w in grouping["worst"].values()) else "FAIL"
        if grouping["reason"]:
            verdict = "not judged"
        title = f"{grouping['name']} — class {shown}: {verdict}"
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _deciding_class(grouping: dict[str, Any], figures: dict[str, Any]) -> str:
    if figures["mode"] == "binary":
        return str(figures["positive"])
    worst = grouping["worst"].get("demographic_parity_difference")
    return str(worst["class"]) if worst else str(figures["classes"][0])
