"""Train a scikit-learn logistic regression on a CSV dataset: the trainer `sklearn_logistic`.

The sample of a trainer plugin (docs/plugins.md). A pipeline names it as
`trainer: sklearn_logistic`; the spec is checked against the declarations below
(pipeline types, result type, hyperparameters) when the pipeline is created, and
the run goes through the same scheduler, worker and `LocalContext` as a built-in
trainer: progress, metrics, checkpoints (resumed after a failure), stop requests
and a registered result. The result is `model.joblib`, a pickle, which the sample
runtime serves: a pipeline says `result_model: {trust: true}` (an admin's
`models.trust`) to have it registered trusted.

Each epoch is one pass of `SGDClassifier(loss="log_loss").partial_fit` (logistic
regression fitted by stochastic gradient descent, so an epoch is a step the
platform can report and checkpoint). scikit-learn is imported inside `train`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.training.context import LocalContext, TrainResult

MAX_ROWS = 1_000_000


class LogisticHyperparameters(BaseModel):
    """What `sklearn_logistic` takes; unknown keys are refused (extra="forbid")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(default="label", min_length=1, max_length=256)
    features: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    alpha: float = Field(default=1e-4, gt=0, le=10, description="L2 regularisation strength")
    learning_rate: float = Field(default=0.01, gt=0, le=10)
    epochs: int = Field(default=10, ge=1, le=100_000)  # the spec's max_epochs
    checkpoint_every: int | None = Field(default=None, ge=1)  # the spec's every_steps


class LogisticTrainer:
    """A scikit-learn logistic regression on a CSV table's numeric columns."""

    # The declarations a pipeline spec is checked against (docs/plugins.md).
    pipeline_types = frozenset({"pre_training"})
    result_type = "classification"
    hyperparameter_model = LogisticHyperparameters
    base_trainer = None
    data_parallel = False

    def train(self, ctx: LocalContext) -> TrainResult:
        from sklearn.linear_model import SGDClassifier

        hp = LogisticHyperparameters.model_validate(ctx.hyperparameters)
        rows, labels = _read_csv(ctx.dataset(), hp)
        classes = np.array(sorted(set(labels)))
        if len(classes) < 2:
            raise InvalidInput(f"column {hp.label!r} holds one class; it needs at least two")
        order = np.random.default_rng(ctx.seed).permutation(len(rows))
        held = max(1, int(len(rows) * ctx.validation_split))
        val, fit = order[:held], order[held:]
        model = SGDClassifier(
            loss="log_loss",
            alpha=hp.alpha,
            learning_rate="constant",
            eta0=hp.learning_rate,
            random_state=ctx.seed,
        )
        start = 0
        saved = ctx.latest_checkpoint()
        if saved is not None:  # a resumed run continues from its last epoch
            start, state = saved
            model.partial_fit(rows[fit[:1]], labels[fit[:1]], classes=classes)
            model.coef_ = np.array(state["coef"], dtype=np.float64)
            model.intercept_ = np.array(state["intercept"], dtype=np.float64)
        every = hp.checkpoint_every or 1
        metrics: dict[str, float] = {}
        for epoch in range(start + 1, hp.epochs + 1):
            if ctx.should_stop():
                break
            model.partial_fit(rows[fit], labels[fit], classes=classes)
            loss = _log_loss(model, rows[fit], labels[fit])
            if not math.isfinite(loss):
                raise TrainingDiverged(f"the loss is {loss} at epoch {epoch}")
            metrics = {
                "loss": loss,
                "val_accuracy": float(model.score(rows[val], labels[val])),
            }
            for name, value in metrics.items():
                ctx.log(name, value, epoch)
            ctx.progress(epoch, hp.epochs, epoch=epoch)
            if epoch % every == 0 or epoch == hp.epochs:
                state = {"coef": model.coef_.tolist(), "intercept": model.intercept_.tolist()}
                ctx.checkpoint(state, epoch)
        return _write(model, ctx, metrics)


def _read_csv(path: Path, hp: LogisticHyperparameters) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix.lower() != ".csv":
        raise InvalidInput(f"sklearn_logistic reads a CSV dataset, not {path.name}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if hp.label not in header:
            raise InvalidInput(f"the dataset has no {hp.label!r} column (it has {header})")
        features = hp.features or [name for name in header if name != hp.label]
        missing = [name for name in features if name not in header]
        if missing:
            raise InvalidInput(f"the dataset has no column {missing[0]!r}")
        rows, labels = [], []
        for number, row in enumerate(reader, start=2):
            if number > MAX_ROWS + 1:
                raise InvalidInput(f"sklearn_logistic reads at most {MAX_ROWS} rows")
            try:
                rows.append([float(row[name]) for name in features])
            except (TypeError, ValueError):
                raise InvalidInput(f"line {number}: a feature is not a number") from None
            labels.append(str(row[hp.label]))
    if len(rows) < 2:
        raise InvalidInput("sklearn_logistic needs at least two rows")
    return np.array(rows, dtype=np.float64), np.array(labels)


def _log_loss(model: Any, rows: np.ndarray, labels: np.ndarray) -> float:
    probabilities = model.predict_proba(rows)
    index = np.searchsorted(model.classes_, labels)
    picked = probabilities[np.arange(len(labels)), index]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def _write(model: Any, ctx: LocalContext, metrics: dict[str, float]) -> TrainResult:
    import joblib

    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, ctx.output_dir / "model.joblib")
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir)


trainer = LogisticTrainer()
