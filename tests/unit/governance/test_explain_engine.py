"""The explainability engine on models trained here with one planted cause each.

A tabular classifier whose label is the sign of one column: Integrated Gradients and
permutation importance (scikit-learn's, over the model) both rank that column first.
A text classifier whose class is decided by one trigger word is explained through
the service in tests/integration/test_governance_explain.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelhub.errors import InvalidInput
from modelhub.governance import attributions, importance_chart, permutation
from tests.unit.governance.explain_models import (
    FEATURES,
    signal_table,
    train_tabular,
)


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("tabular")
    data = signal_table(root / "train.csv")
    folder = train_tabular(root, data)
    return folder, pd.read_csv(signal_table(root / "eval.csv", rows=300, seed=1))


def matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame[FEATURES].to_numpy(dtype=np.float32)


def labels_of(folder: Path) -> Any:
    from modelhub.networks import tabular as network

    predictor = network.load(folder)

    def predict(rows: np.ndarray) -> np.ndarray:
        found = predictor.predict([dict(zip(FEATURES, map(float, r), strict=True)) for r in rows])
        return np.asarray([str(label) for label in found])

    return predict


def test_integrated_gradients_rank_the_signal_first_and_converge(
    tabular: tuple[Path, pd.DataFrame],
) -> None:
    folder, frame = tabular
    for baseline in ("mean", "zeros"):
        found = attributions.tabular_attributions(folder, matrix(frame), baseline)
        ranking = importance_chart.rank_attributions(found.features, found.values)
        assert ranking[0].name == "signal"
        assert ranking[0].importance > 5 * ranking[1].importance
        assert float(np.median(found.relative_deltas)) < 0.05
        assert found.values.shape == (len(frame), len(FEATURES))
    with pytest.raises(InvalidInput, match="baseline"):
        attributions.tabular_attributions(folder, matrix(frame), "median")


def test_permutation_ranks_the_signal_first(tabular: tuple[Path, pd.DataFrame]) -> None:
    folder, frame = tabular
    predict = labels_of(folder)
    x, y = matrix(frame), frame["label"].astype(str).to_numpy()
    ours = permutation.permutation_importance(predict, x, y, n_repeats=4, seed=0)
    assert ours.importances.shape == (len(FEATURES), 4)
    ranking = importance_chart.rank(FEATURES, ours.mean, ours.std)
    assert ranking[0].name == "signal" and ranking[0].importance > 0.3
    assert max(r.importance for r in ranking[1:]) < 0.05
    assert ours.baseline_score > 0.9
    # The same seed, the same shuffles.
    again = permutation.permutation_importance(predict, x, y, n_repeats=4, seed=0)
    assert again.importances == pytest.approx(ours.importances)
    # Without labels: agreement with the unpermuted predictions, the same winner.
    agreement = permutation.permutation_importance(predict, x, None, n_repeats=2)
    assert agreement.baseline_score == 1.0
    assert FEATURES[int(np.argmax(agreement.mean))] == "signal"


def test_local_occlusion_blames_the_signal_for_one_row(
    tabular: tuple[Path, pd.DataFrame],
) -> None:
    from modelhub.networks import tabular as network

    folder, frame = tabular
    predictor = network.load(folder)

    def probabilities(rows: np.ndarray) -> np.ndarray:
        return np.asarray(
            predictor.predict_proba([dict(zip(FEATURES, map(float, r), strict=True)) for r in rows])
        )

    x = matrix(frame)
    row = int(np.argmax(np.abs(x[:, FEATURES.index("signal")])))
    predicted, scores = permutation.local_occlusion(probabilities, x, row)
    assert predicted == int(x[row, FEATURES.index("signal")] > 0)
    assert FEATURES[int(np.argmax(scores))] == "signal"


def test_word_pieces_join_into_words_and_specials_drop() -> None:
    tokens = ["[CLS]", "un", "##believ", "##able", "news", "[SEP]"]
    merged = attributions.merge_word_pieces(
        tokens, np.array([9.0, 0.1, 0.2, 0.3, -0.5, 9.0]), np.array([1, 0, 0, 0, 0, 1], bool)
    )
    assert [w for w, _ in merged] == ["unbelievable", "news"]
    assert merged[0][1] == pytest.approx(0.6)


def test_the_chart_is_a_png() -> None:
    ranking = importance_chart.rank(["a", "b"], np.array([0.1, 0.3]), np.array([0.01, 0.02]))
    assert [r.name for r in ranking] == ["b", "a"]
    png = importance_chart.chart_png(ranking, "m@1: permutation", "drop in accuracy")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
