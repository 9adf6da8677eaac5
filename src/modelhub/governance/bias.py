"""Bias of a classifier's answers across groups of people, with Fairlearn.

Given the true labels, the model's labels and a table of sensitive columns, each
*grouping* is judged: every sensitive column alone and, when several are given, their
intersection (a group per combination of values). For each grouping a Fairlearn
`MetricFrame` gives per group the size, accuracy, selection rate, false positive and
false negative rates, and the gaps between groups as Fairlearn's
`demographic_parity_difference`, `demographic_parity_ratio` and
`equalized_odds_difference` take them (from that same MetricFrame; see `_gaps`).

A binary classifier is judged for its positive class (given, else the second class in
sorted order); a multiclass one class by class, one-vs-rest, its worst class deciding.
Groups smaller than `min_group_size` are reported with their size and left out of the
gaps; a grouping with fewer than two groups left fails, saying so. Each gap is checked
against the policy's bar (differences at most, the ratio at least).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelhub.domain.governance_policy import BiasThresholds
from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

MAX_SENSITIVE_COLUMNS = 5
MAX_GROUPS = 1000  # per column: more is an identifier, not a group of people
# Fairlearn's MetricFrame lays the intersection out over every combination of values.
MAX_COMBINATIONS = 20_000
MAX_CLASSES = 50  # one-vs-rest views of a multiclass model
MISSING = "(missing)"
JOINER = " & "

# figure -> (the bar's field in BiasThresholds, "most" | "least")
GAPS: dict[str, str] = {
    "demographic_parity_difference": "most",
    "demographic_parity_ratio": "least",
    "equalized_odds_difference": "most",
}
RATES = ("selection_rate", "false_positive_rate", "false_negative_rate")


@dataclass(frozen=True)
class BiasResult:
    """The verdict, a one-line summary and the figures (JSON) it rests on."""

    passed: bool
    summary: str
    figures: dict[str, Any]


def positive_class(classes: list[str], positive: str | None) -> tuple[str, str]:
    """The positive class of a binary model and how it was chosen."""
    if positive is not None:
        if positive not in classes:
            raise InvalidInput(
                f"positive class {positive!r} is not one of the classes {', '.join(classes)}",
                {"field": "positive", "classes": classes},
            )
        return positive, "given"
    return sorted(classes)[1], "the second class in sorted order"


def assess(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: pd.DataFrame,
    classes: list[str],
    thresholds: BiasThresholds,
    positive: str | None = None,
) -> BiasResult:
    """Judge `y_pred` against `y_true` across the groups of `sensitive` (labels as str).

    InvalidInput when the inputs cannot be judged: lengths differ, no or too many
    sensitive columns, a column with too many distinct values, fewer than two classes.
    """
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    columns = [str(c) for c in sensitive.columns]
    _check_shapes(y_true, y_pred, sensitive, columns)
    classes = sorted({*map(str, classes), *np.unique(y_true).tolist()})
    if len(classes) < 2:
        raise InvalidInput(
            f"the labels hold one class ({classes[0] if classes else 'none'}); a bias "
            "assessment compares errors and selections, which needs at least two",
            {"field": "label", "classes": classes},
        )
    if len(classes) == 2:
        pos, chosen = positive_class(classes, positive)
        views = [pos]
        mode = "binary"
    else:
        if positive is not None:
            raise InvalidInput(
                f"a positive class applies to a binary model; this one has {len(classes)} "
                "classes, each judged against the rest",
                {"field": "positive", "classes": classes[:20]},
            )
        if len(classes) > MAX_CLASSES:
            raise InvalidInput(
                f"{len(classes)} classes; a one-vs-rest bias assessment takes at most "
                f"{MAX_CLASSES}",
                {"field": "label", "classes": len(classes)},
            )
        views, chosen, pos, mode = classes, "each class, one-vs-rest", "", "one_vs_rest"
    groups = _as_groups(sensitive, columns)
    cells = _cells(y_true, y_pred, groups, classes)
    groupings = [[c] for c in columns] + ([columns] if len(columns) > 1 else [])
    codes = [classes.index(view) for view in views]
    import sklearn

    # The inputs are checked above and folded into a few hundred cells: sklearn's per-call
    # validation would otherwise cost more than the metrics themselves.
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        judged = [_grouping(cells, names, codes, classes, thresholds) for names in groupings]
    checks = [check for grouping in judged for check in grouping.pop("checks")]
    failures = [f"{g['name']}: {g['reason']}" for g in judged if g["reason"] is not None] + [
        f"{c['grouping']}: {c['figure']} {_fmt(c['value'])} "
        f"{'>' if c['at'] == 'most' else '<'} {c['bar']:g}"
        + (f" (class {c['class']})" if mode == "one_vs_rest" else "")
        for c in sorted(checks, key=_excess, reverse=True)
        if not c["passed"]
    ]
    passed = not failures
    figures: dict[str, Any] = {
        "rows": len(y_true),
        "classes": classes,
        "mode": mode,
        "positive": pos or None,
        "positive_chosen": chosen,
        "sensitive": columns,
        "thresholds": thresholds.model_dump(),
        "groupings": judged,
        "checks": checks,
        "failures": failures,
    }
    summary = (
        f"bias within the policy's bars over {len(judged)} grouping(s) of "
        f"{', '.join(columns)} ({len(y_true):,} rows)"
        if passed
        else f"bias beyond the policy's bars: {'; '.join(failures[:3])}"
        + (f" (and {len(failures) - 3} more)" if len(failures) > 3 else "")
    )
    return BiasResult(passed, summary, figures)


def _check_shapes(
    y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame, columns: list[str]
) -> None:
    if not columns:
        raise InvalidInput("name at least one sensitive column", {"field": "sensitive"})
    if len(columns) > MAX_SENSITIVE_COLUMNS:
        raise InvalidInput(
            f"{len(columns)} sensitive columns; at most {MAX_SENSITIVE_COLUMNS}",
            {"field": "sensitive"},
        )
    if len(set(columns)) != len(columns):
        raise InvalidInput("a sensitive column is named twice", {"field": "sensitive"})
    if not len(y_true) == len(y_pred) == len(sensitive):
        raise InvalidInput(
            f"{len(y_true)} labels, {len(y_pred)} predictions and {len(sensitive)} rows of "
            "sensitive columns: they must be as many",
            {"field": "rows"},
        )
    if len(y_true) == 0:
        raise InvalidInput("no rows to assess", {"field": "rows"})


def _as_groups(sensitive: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Each sensitive column as strings (missing values a group of their own)."""
    out = sensitive.copy()
    for column in columns:
        values = out[column]
        distinct = values.nunique(dropna=False)
        if distinct > MAX_GROUPS:
            raise InvalidInput(
                f"sensitive column {column!r} has {distinct:,} distinct values; a sensitive "
                f"column names groups of people (at most {MAX_GROUPS})",
                {"field": "sensitive", "column": column, "distinct": int(distinct)},
            )
        out[column] = values.astype(object).where(values.notna(), MISSING).astype(str)
    combinations = math.prod(int(out[column].nunique()) for column in columns)
    if combinations > MAX_COMBINATIONS:
        raise InvalidInput(
            f"the sensitive columns {', '.join(columns)} combine into {combinations:,} "
            f"intersectional groups; at most {MAX_COMBINATIONS:,} (name fewer columns, or "
            "coarser ones)",
            {"field": "sensitive", "combinations": combinations},
        )
    return out


def _cells(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, classes: list[str]
) -> pd.DataFrame:
    """The rows folded into cells (groups x true class x predicted class) with their count.

    Every figure here is a weighted mean over rows, so Fairlearn given one row per cell
    and its count as `sample_weight` answers exactly as it would on the rows themselves,
    in milliseconds instead of seconds (its MetricFrame walks every row in Python).
    """
    import pandas as pd

    index = {name: i for i, name in enumerate(classes)}
    frame = groups.copy()
    frame["_true"] = pd.Series(y_true, index=groups.index).map(index).to_numpy()
    frame["_pred"] = pd.Series(y_pred, index=groups.index).map(index).fillna(-1).to_numpy()
    keys = [*map(str, groups.columns), "_true", "_pred"]
    cells = frame.groupby(keys, sort=True, observed=True).size().rename("_weight").reset_index()
    return cells


def _grouping(
    cells: pd.DataFrame,
    names: list[str],
    views: list[int],
    classes: list[str],
    thresholds: BiasThresholds,
) -> dict[str, Any]:
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score

    cells = cells.groupby([*names, "_true", "_pred"], sort=True, observed=True)["_weight"].sum()
    cells = cells.reset_index()
    weight = cells["_weight"].to_numpy(dtype=np.float64)
    features: Any = cells[names] if len(names) > 1 else cells[names[0]]
    true, pred = cells["_true"].to_numpy(), cells["_pred"].to_numpy()
    overall = MetricFrame(
        metrics={"size": _total_weight, "accuracy": accuracy_score},
        y_true=true,
        y_pred=pred,
        sensitive_features=features,
        sample_params={"size": {"sample_weight": weight}, "accuracy": {"sample_weight": weight}},
    ).by_group
    # Fairlearn lists every combination of the columns' values; one no row has is no group.
    overall = overall[overall["size"].notna() & (overall["size"] > 0)]
    index_names = list(overall.index.names)
    table = {_key(key, index_names): row for key, row in overall.iterrows()}
    sizes = {label: round(float(row["size"])) for label, row in table.items()}
    small = {label for label, size in sizes.items() if size < thresholds.min_group_size}
    labels = cells[names[0]] if len(names) == 1 else cells[names].agg(JOINER.join, axis=1)
    kept = ~labels.isin(small).to_numpy()
    n_kept = len(sizes) - len(small)

    per_class: dict[str, dict[str, Any]] = {}
    checks: list[dict[str, Any]] = []
    name = JOINER.join(names)
    for view in views:
        t, p = (true == view).astype(np.int8), (pred == view).astype(np.int8)
        frame = _rate_frame(t, p, features, weight)
        rates = _by_group(frame)
        gaps: dict[str, float | None] = {}
        if n_kept >= 2:
            if small:
                frame = _rate_frame(t[kept], p[kept], features[kept], weight[kept])
            gaps = _gaps(frame)
            label = classes[view]
            checks += [_check(name, label, fig, value, thresholds) for fig, value in gaps.items()]
        per_class[classes[view]] = {"gaps": gaps, "rates": rates}

    rows = []
    for label, row in table.items():
        entry: dict[str, Any] = {
            "group": label,
            "size": sizes[label],
            "accuracy": _num(row["accuracy"]),
            "judged": label not in small,
            "rates": {view: per_class[view]["rates"].get(label, {}) for view in per_class},
        }
        rows.append(entry)
    reason = (
        None
        if n_kept >= 2
        else f"only {n_kept} group(s) of at least {thresholds.min_group_size} rows; "
        "the gaps need two"
    )
    return {
        "name": name,
        "columns": names,
        "groups": rows,
        "small_groups": [{"group": label, "size": sizes[label]} for label in sorted(small)],
        "judged_groups": n_kept,
        "gaps": {view: per_class[view]["gaps"] for view in per_class},
        "worst": _worst(checks),
        "reason": reason,
        "checks": checks,
    }


def _total_weight(y_true: Any, y_pred: Any, sample_weight: np.ndarray) -> float:
    return float(np.sum(sample_weight))


# Fairlearn's false_positive_rate and false_negative_rate go through sklearn's
# confusion_matrix and its input checks: about 1,000 times the cost of the weighted
# share below, per group and per class, which made 72 intersectional groups take tens
# of seconds. These are the same rates under Fairlearn's convention (0 for a group with
# no negatives, or no positives), given to Fairlearn's MetricFrame as any metric is;
# tests/unit/governance/test_bias.py holds them to Fairlearn's own functions.
def _share(
    y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray, truth: int, said: int
) -> float:
    among = np.asarray(y_true) == truth
    total = float(np.sum(sample_weight[among]))
    if total == 0.0:
        return 0.0
    return float(np.sum(sample_weight[among & (np.asarray(y_pred) == said)])) / total


def false_positive_rate(y_true: Any, y_pred: Any, sample_weight: np.ndarray) -> float:
    return _share(y_true, y_pred, sample_weight, truth=0, said=1)


def false_negative_rate(y_true: Any, y_pred: Any, sample_weight: np.ndarray) -> float:
    return _share(y_true, y_pred, sample_weight, truth=1, said=0)


def true_positive_rate(y_true: Any, y_pred: Any, sample_weight: np.ndarray) -> float:
    return _share(y_true, y_pred, sample_weight, truth=1, said=1)


def _rate_frame(t: np.ndarray, p: np.ndarray, features: Any, weight: np.ndarray) -> Any:
    """Fairlearn's MetricFrame of the rates, per group, of one class against the rest."""
    from functools import partial

    from fairlearn.metrics import MetricFrame, selection_rate

    metrics = {
        "selection_rate": partial(selection_rate, pos_label=1),
        "false_positive_rate": false_positive_rate,
        "false_negative_rate": false_negative_rate,
        "true_positive_rate": true_positive_rate,
    }
    return MetricFrame(
        metrics=metrics,
        y_true=t,
        y_pred=p,
        sensitive_features=features,
        sample_params={metric: {"sample_weight": weight} for metric in metrics},
    )


def _gaps(frame: Any) -> dict[str, float | None]:
    """The gaps between groups as Fairlearn's functions take them from a MetricFrame:
    `demographic_parity_difference` and `_ratio` are the selection rate's difference and
    ratio between groups; `equalized_odds_difference` (worst case) the larger of the
    true and false positive rates' differences. One frame serves all three."""
    difference = frame.difference(method="between_groups")
    ratio = frame.ratio(method="between_groups")
    return {
        "demographic_parity_difference": _num(difference["selection_rate"]),
        "demographic_parity_ratio": _num(ratio["selection_rate"]),
        "equalized_odds_difference": _num(
            max(difference["true_positive_rate"], difference["false_positive_rate"])
        ),
    }


def _by_group(frame: Any) -> dict[str, dict[str, float | None]]:
    table = frame.by_group
    names = list(table.index.names)
    return {
        _key(key, names): {rate: _num(row[rate]) for rate in RATES} for key, row in table.iterrows()
    }


def _key(key: Any, names: list[str]) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return JOINER.join(str(part) for part in parts)


def _check(
    grouping: str, view: str, figure: str, value: float | None, thresholds: BiasThresholds
) -> dict[str, Any]:
    bar = float(getattr(thresholds, figure))
    at = GAPS[figure]
    if value is None:  # the ratio when no group is ever selected: parity holds trivially
        passed = True
    else:
        passed = value <= bar + 1e-12 if at == "most" else value >= bar - 1e-12
    return {
        "grouping": grouping,
        "class": view,
        "figure": figure,
        "value": value,
        "bar": bar,
        "at": at,
        "passed": passed,
    }


def _excess(check: dict[str, Any]) -> float:
    """How far a figure is beyond its bar (negative when within it)."""
    if check["value"] is None:
        return -1.0
    gap = check["value"] - check["bar"]
    return float(gap if check["at"] == "most" else -gap)


def _worst(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the check of the class that decides (largest gap, smallest ratio)."""
    worst: dict[str, Any] = {}
    for check in checks:
        if check["value"] is None:
            continue
        held = worst.get(check["figure"])
        sign = 1 if check["at"] == "most" else -1
        if held is None or sign * check["value"] > sign * held["value"]:
            worst[check["figure"]] = {k: check[k] for k in ("value", "class", "bar", "passed")}
    return worst


def _num(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else round(number, 6)


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
