"""Permutation importance for any classifier we can only call: shuffled copies, batched.

A feature matters as much as the score drops when its column is shuffled (the link
between it and the rest of the row broken). The score is accuracy against a label
column when one is given, else agreement with the model's own unpermuted answers.

scikit-learn's `permutation_importance` calls the model once per feature and repeat;
for a model behind a runtime each call has a fixed cost, so here every permuted copy
is built first and as many copies as fit `max_rows_per_call` go through the model in
one call (bench/bench_permutation.py measures the difference; a test checks the
figures against scikit-learn's on the same model and data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # rows [n, features] -> labels [n]
Probabilities = Callable[[np.ndarray], np.ndarray]  # rows [n, features] -> [n, classes]

DEFAULT_REPEATS = 5
MAX_ROWS_PER_CALL = 1 << 20


@dataclass(frozen=True)
class PermutationResult:
    baseline_score: float
    importances: np.ndarray  # [features, repeats]: the score's drop per shuffle

    @property
    def mean(self) -> np.ndarray:
        out: np.ndarray = self.importances.mean(axis=1)
        return out

    @property
    def std(self) -> np.ndarray:
        out: np.ndarray = self.importances.std(axis=1)
        return out


def permutation_importance(
    predict: Predict,
    matrix: np.ndarray,
    target: np.ndarray | None = None,
    n_repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    max_rows_per_call: int = MAX_ROWS_PER_CALL,
) -> PermutationResult:
    """The drop in accuracy (or agreement, without `target`) per feature and repeat."""
    rows, width = matrix.shape
    reference = predict(matrix)
    truth = reference if target is None else np.asarray(target)
    baseline = float(np.mean(reference == truth))
    rng = np.random.default_rng(seed)
    jobs = [(feature, repeat) for feature in range(width) for repeat in range(n_repeats)]
    orders = [rng.permutation(rows) for _ in jobs]
    per_call = max(1, max_rows_per_call // rows)
    drops = np.zeros((width, n_repeats), dtype=np.float64)
    for start in range(0, len(jobs), per_call):
        chunk = jobs[start : start + per_call]
        stacked = np.tile(matrix, (len(chunk), 1))
        for k, (feature, _) in enumerate(chunk):
            block = slice(k * rows, (k + 1) * rows)
            stacked[block, feature] = matrix[orders[start + k], feature]
        answers = predict(stacked).reshape(len(chunk), rows)
        for k, (feature, repeat) in enumerate(chunk):
            drops[feature, repeat] = baseline - float(np.mean(answers[k] == truth))
    return PermutationResult(baseline, drops)


def local_occlusion(
    probabilities: Probabilities,
    matrix: np.ndarray,
    row: int,
    draws: int = 32,
    seed: int = 0,
) -> tuple[int, np.ndarray]:
    """One row's attributions without gradients: for each feature, how much the
    probability of the row's predicted class falls when that feature takes values
    drawn from other rows (mean over `draws`). Returns (predicted class index, scores)."""
    rows, width = matrix.shape
    point = matrix[row : row + 1]
    predicted = int(probabilities(point)[0].argmax())
    own = float(probabilities(point)[0, predicted])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, rows, size=draws)
    stacked = np.repeat(point, width * draws, axis=0)
    for feature in range(width):
        stacked[feature * draws : (feature + 1) * draws, feature] = matrix[picks, feature]
    p = probabilities(stacked)[:, predicted].reshape(width, draws)
    scores: np.ndarray = own - p.mean(axis=1)
    return predicted, scores
