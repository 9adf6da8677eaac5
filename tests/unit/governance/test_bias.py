"""The bias engine's figures are Fairlearn's, called directly on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn.metrics import accuracy_score

from modelhub.domain.governance_policy import BiasThresholds
from modelhub.errors import InvalidInput
from modelhub.governance.bias import assess
from modelhub.governance.bias_chart import render_chart

BARS = BiasThresholds(min_group_size=30)


def people(
    rows: int, seed: int, unfair: float = 0.0
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """True labels, a model's labels (right 85% of the time) and two sensitive columns;
    `unfair` is how much more often group "b" of `gender` is wrongly refused."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["a", "b"], rows)
    band = rng.choice(["young", "old"], rows)
    y_true = rng.integers(0, 2, rows)
    right = rng.random(rows) < 0.85
    y_pred = np.where(right, y_true, 1 - y_true)
    refused = (gender == "b") & (rng.random(rows) < unfair)
    y_pred = np.where(refused, 0, y_pred)
    frame = pd.DataFrame({"gender": gender, "band": band})
    return y_true.astype(str), y_pred.astype(str), frame


def grouping(figures: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in figures["groupings"] if g["name"] == name)


def test_per_group_rates_and_gaps_are_fairlearns_for_each_column_and_the_intersection() -> None:
    y_true, y_pred, frame = people(2000, seed=1)
    result = assess(y_true, y_pred, frame, ["0", "1"], BARS)
    figures = result.figures
    assert (figures["mode"], figures["positive"]) == ("binary", "1")
    assert figures["positive_chosen"] == "the second class in sorted order"
    assert [g["name"] for g in figures["groupings"]] == ["gender", "band", "gender & band"]

    t, p = (y_true == "1").astype(int), (y_pred == "1").astype(int)
    for name, features in (
        ("gender", frame["gender"]),
        ("gender & band", frame[["gender", "band"]]),
    ):
        ours = grouping(figures, name)
        direct = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "false_positive_rate": false_positive_rate,
                "false_negative_rate": false_negative_rate,
                "accuracy": accuracy_score,
            },
            y_true=t,
            y_pred=p,
            sensitive_features=features,
        ).by_group
        assert len(ours["groups"]) == len(direct) == (2 if name == "gender" else 4)
        for key, row in direct.iterrows():
            label = " & ".join(key) if isinstance(key, tuple) else str(key)
            group = next(g for g in ours["groups"] if g["group"] == label)
            assert group["accuracy"] == pytest.approx(row["accuracy"], abs=1e-6)
            for rate in ("selection_rate", "false_positive_rate", "false_negative_rate"):
                assert group["rates"]["1"][rate] == pytest.approx(row[rate], abs=1e-6)
        gaps = ours["gaps"]["1"]
        kw = {"sensitive_features": features}
        assert gaps["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(t, p, **kw), abs=1e-6
        )
        assert gaps["demographic_parity_ratio"] == pytest.approx(
            demographic_parity_ratio(t, p, **kw), abs=1e-6
        )
        assert gaps["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(t, p, **kw), abs=1e-6
        )
    assert result.passed, result.summary
    assert sum(g["size"] for g in grouping(figures, "gender & band")["groups"]) == 2000


def test_a_disadvantaged_group_fails_each_bar_it_crosses_and_says_which() -> None:
    y_true, y_pred, frame = people(2000, seed=2, unfair=0.5)
    result = assess(y_true, y_pred, frame, ["0", "1"], BARS)
    assert not result.passed
    failed = {(c["grouping"], c["figure"]) for c in result.figures["checks"] if not c["passed"]}
    assert ("gender", "demographic_parity_difference") in failed
    assert ("gender", "equalized_odds_difference") in failed
    assert not any(grouping == "band" for grouping, _ in failed)
    assert "gender: equalized_odds_difference 0.429 > 0.1" in result.summary
    check = next(c for c in result.figures["checks"] if c["grouping"] == "gender")
    assert (check["bar"], check["at"]) == (0.1, "most")


def test_a_small_group_is_reported_with_its_size_and_left_out_of_the_gaps() -> None:
    y_true, y_pred, frame = people(1000, seed=3)
    frame.loc[:11, "gender"] = "c"  # 12 rows: under min_group_size
    y_pred[:12] = "1"  # a group that would otherwise blow every gap
    result = assess(y_true, y_pred, frame, ["0", "1"], BARS)
    gender = grouping(result.figures, "gender")
    assert gender["small_groups"] == [{"group": "c", "size": 12}]
    assert {g["group"]: g["judged"] for g in gender["groups"]} == {"a": True, "b": True, "c": False}
    keep = frame["gender"] != "c"
    t, p = (y_true == "1").astype(int)[keep], (y_pred == "1").astype(int)[keep]
    assert gender["gaps"]["1"]["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(t, p, sensitive_features=frame["gender"][keep]), abs=1e-6
    )
    assert gender["judged_groups"] == 2 and result.passed, result.summary


def test_fewer_than_two_groups_large_enough_fails_saying_so() -> None:
    y_true, y_pred, frame = people(100, seed=4)
    result = assess(y_true, y_pred, frame, ["0", "1"], BiasThresholds(min_group_size=80))
    assert not result.passed
    assert (
        "gender: only 0 group(s) of at least 80 rows; the gaps need two"
        in result.figures["failures"]
    )
    assert all(g["reason"] for g in result.figures["groupings"])


def test_multiclass_is_judged_one_vs_rest_with_the_worst_class_deciding() -> None:
    rng = np.random.default_rng(5)
    rows = 3000
    group = rng.choice(["a", "b"], rows)
    y_true = rng.choice(["cat", "dog", "fox"], rows)
    y_pred = y_true.copy()
    # Group b's foxes are called dogs: only fox (and dog) one-vs-rest gaps open.
    y_pred[(group == "b") & (y_true == "fox") & (rng.random(rows) < 0.6)] = "dog"
    frame = pd.DataFrame({"group": group})
    result = assess(y_true, y_pred, frame, ["cat", "dog", "fox"], BARS)
    figures = result.figures
    assert figures["mode"] == "one_vs_rest" and figures["positive"] is None
    gaps = grouping(figures, "group")["gaps"]
    assert set(gaps) == {"cat", "dog", "fox"}
    for cls in ("cat", "fox"):
        t, p = (y_true == cls).astype(int), (y_pred == cls).astype(int)
        assert gaps[cls]["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(t, p, sensitive_features=group), abs=1e-6
        )
    assert gaps["cat"]["equalized_odds_difference"] == 0.0
    worst = grouping(figures, "group")["worst"]["equalized_odds_difference"]
    assert worst["class"] == "fox" and not worst["passed"]
    assert not result.passed and "(class fox)" in result.summary
    with pytest.raises(InvalidInput, match="applies to a binary model; this one has 3 classes"):
        assess(y_true, y_pred, frame, ["cat", "dog", "fox"], BARS, positive="fox")


def test_the_positive_class_is_the_one_given() -> None:
    y_true, y_pred, frame = people(400, seed=6)
    given = assess(y_true, y_pred, frame, ["0", "1"], BARS, positive="0")
    assert (given.figures["positive"], given.figures["positive_chosen"]) == ("0", "given")
    t, p = (y_true == "0").astype(int), (y_pred == "0").astype(int)
    assert grouping(given.figures, "gender")["gaps"]["0"][
        "demographic_parity_difference"
    ] == pytest.approx(
        demographic_parity_difference(t, p, sensitive_features=frame["gender"]), abs=1e-6
    )
    with pytest.raises(InvalidInput, match="positive class 'yes' is not one of the classes 0, 1"):
        assess(y_true, y_pred, frame, ["0", "1"], BARS, positive="yes")


def test_inputs_that_cannot_be_judged_are_refused_naming_the_problem() -> None:
    y_true, y_pred, frame = people(200, seed=7)
    with pytest.raises(InvalidInput, match="one class"):
        assess(np.full(200, "1"), np.full(200, "1"), frame, ["1"], BARS)
    ids = pd.DataFrame({"customer": np.arange(2000).astype(str)})
    with pytest.raises(InvalidInput, match="'customer' has 2,000 distinct values"):
        assess(np.tile(y_true, 10), np.tile(y_pred, 10), ids, ["0", "1"], BARS)
    wide = pd.DataFrame({c: np.arange(2000) % 900 for c in ("p", "q")})
    with pytest.raises(InvalidInput, match="combine into 810,000 intersectional groups"):
        assess(np.tile(y_true, 10), np.tile(y_pred, 10), wide, ["0", "1"], BARS)
    with pytest.raises(InvalidInput, match="must be as many"):
        assess(y_true[:10], y_pred, frame, ["0", "1"], BARS)
    with pytest.raises(InvalidInput, match="at least one sensitive column"):
        assess(y_true, y_pred, frame[[]], ["0", "1"], BARS)


def test_missing_sensitive_values_are_a_group_of_their_own() -> None:
    y_true, y_pred, frame = people(300, seed=8)
    frame["gender"] = frame["gender"].astype(object)
    frame.loc[:49, "gender"] = None
    result = assess(y_true, y_pred, frame[["gender"]], ["0", "1"], BARS)
    sizes = {g["group"]: g["size"] for g in grouping(result.figures, "gender")["groups"]}
    assert sizes["(missing)"] == 50 and sum(sizes.values()) == 300


def test_a_combination_no_row_has_is_no_group() -> None:
    y_true, y_pred, frame = people(600, seed=10)
    frame.loc[frame["gender"] == "b", "band"] = "old"  # no young b
    result = assess(y_true, y_pred, frame, ["0", "1"], BARS)
    groups = {g["group"] for g in grouping(result.figures, "gender & band")["groups"]}
    assert groups == {"a & old", "a & young", "b & old"}
    assert grouping(result.figures, "gender & band")["judged_groups"] == 3


def test_the_chart_is_a_png_with_a_panel_per_grouping() -> None:
    y_true, y_pred, frame = people(500, seed=9)
    png = render_chart(assess(y_true, y_pred, frame, ["0", "1"], BARS).figures)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import io

    from PIL import Image

    height = Image.open(io.BytesIO(png)).size[1]
    single = render_chart(assess(y_true, y_pred, frame[["gender"]], ["0", "1"], BARS).figures)
    assert height > Image.open(io.BytesIO(single)).size[1]
