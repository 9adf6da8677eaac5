"""Global importance as a ranked table and a PNG bar chart (matplotlib, Agg backend)."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CHART_TOP = 20


@dataclass(frozen=True)
class Ranked:
    name: str
    importance: float
    std: float


def rank(names: Sequence[str], importance: np.ndarray, std: np.ndarray) -> list[Ranked]:
    """Features by importance, largest first (ties in the given order)."""
    order = np.argsort(-np.asarray(importance), kind="stable")
    return [Ranked(str(names[i]), float(importance[i]), float(std[i])) for i in order]


def rank_attributions(names: Sequence[str], values: np.ndarray) -> list[Ranked]:
    """Global importance of per-row attributions: the mean absolute attribution."""
    magnitude = np.abs(values)
    return rank(names, magnitude.mean(axis=0), magnitude.std(axis=0))


def rank_words(per_text: Sequence[Sequence[tuple[str, float]]]) -> list[Ranked]:
    """Words over a sample of texts: each text's absolute attributions as shares of that
    text's total, averaged over all texts (a word missing from a text adds 0 there),
    so a word ranks high when it often carries much of a prediction."""
    shares: dict[str, list[float]] = defaultdict(list)
    for words in per_text:
        total = sum(abs(score) for _, score in words) or 1.0
        seen: dict[str, float] = defaultdict(float)
        for word, score in words:
            seen[word.lower()] += abs(score) / total
        for word, share in seen.items():
            shares[word].append(share)
    count = max(1, len(per_text))
    names = list(shares)
    padded = [values + [0.0] * (count - len(values)) for values in shares.values()]
    table = np.asarray(padded, dtype=np.float64).reshape(len(names), count)
    return rank(names, table.mean(axis=1), table.std(axis=1))


def chart_png(ranking: Sequence[Ranked], title: str, xlabel: str) -> bytes:
    """A horizontal bar chart of the top features with their std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    top = list(ranking[:CHART_TOP])[::-1]
    figure = Figure(figsize=(7, 0.35 * len(top) + 1.4), dpi=100)
    axes = figure.add_subplot()
    positions = np.arange(len(top))
    axes.barh(
        positions,
        [r.importance for r in top],
        xerr=[r.std for r in top],
        color="#3b75af",
        ecolor="#555555",
        capsize=2,
    )
    axes.set_yticks(positions, [r.name[:40] for r in top])
    axes.set_xlabel(xlabel)
    axes.set_title(title[:90])
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
