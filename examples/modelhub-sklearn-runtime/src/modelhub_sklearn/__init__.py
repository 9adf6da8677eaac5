"""Serve pickled scikit-learn estimators (trusted versions only).

This module is what the entry point names, so it stays light: scikit-learn and
joblib are imported when a model is loaded, not when modelhub lists its plugins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput, UnsafeModel
from modelhub.serving.runtimes import RuntimeInfo

SUFFIXES = (".pkl", ".pickle", ".joblib")
INPUT = "input"
MAX_FEATURES = 1_000_000


def _estimator_file(path: Path) -> Path | None:
    if path.is_file():
        return path if path.suffix.lower() in SUFFIXES else None
    if not path.is_dir():
        return None
    found = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
    return found[0] if len(found) == 1 else None


class SklearnRuntime:
    """One loaded estimator: FP64 rows in, `label` (and `probabilities`) out."""

    def __init__(self, estimator: Any, file: Path) -> None:
        self._estimator: Any = estimator
        features = int(getattr(estimator, "n_features_in_", 0))
        if not 0 < features <= MAX_FEATURES:
            raise InvalidInput(
                f"{file.name} holds a {type(estimator).__name__} that was never fitted",
                {"path": str(file)},
            )
        self._features = features
        self._proba = callable(getattr(estimator, "predict_proba", None))
        outputs = [TensorSpec(name="label", dtype="BYTES", shape=[-1])]
        if self._proba:
            classes = len(getattr(estimator, "classes_", ()))
            outputs.append(TensorSpec(name="probabilities", dtype="FP64", shape=[-1, classes]))
        self.info = RuntimeInfo(
            runtime="sklearn",
            signature=Signature(
                inputs=[TensorSpec(name=INPUT, dtype="FP64", shape=[-1, features])],
                outputs=outputs,
            ),
            memory_bytes=file.stat().st_size,
            details={"estimator": type(estimator).__name__},
        )

    def infer(self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]) -> dict[str, Any]:
        if self._estimator is None:
            raise InvalidInput("the sklearn runtime was unloaded")
        x = inputs.get(INPUT)
        if x is None or x.ndim != 2 or x.shape[1] != self._features:
            got = "nothing" if x is None else f"shape {list(x.shape)}"
            raise InvalidInput(
                f"input {INPUT!r} must be FP64 [rows, {self._features}], got {got}",
                {"field": INPUT},
            )
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            raise InvalidInput(f"input {INPUT!r} holds NaN or infinite values", {"field": INPUT})
        labels = np.empty(len(x), dtype=object)
        labels[:] = [str(v) for v in self._estimator.predict(x).tolist()]
        out: dict[str, Any] = {"label": labels}
        if self._proba:
            out["probabilities"] = np.asarray(self._estimator.predict_proba(x), dtype=np.float64)
        return out

    def unload(self) -> None:
        self._estimator = None


class SklearnProvider:
    """Pickled scikit-learn estimators (.pkl, .pickle, .joblib) of trusted versions."""

    def claims(self, path: Path) -> bool:
        return _estimator_file(path) is not None

    def load(self, path: Path, *, trusted: bool) -> SklearnRuntime:
        file = _estimator_file(path)
        if file is None:
            raise InvalidInput(
                f"{path.name} holds no single pickled estimator", {"path": str(path)}
            )
        if not trusted:
            # modelhub refuses this before calling us; a plugin says no again all the same.
            raise UnsafeModel(
                f"{file.name} is a pickle and its version is not trusted", {"path": str(file)}
            )
        import joblib
        from sklearn.base import BaseEstimator

        estimator = joblib.load(file)
        if not isinstance(estimator, BaseEstimator) or not callable(
            getattr(estimator, "predict", None)
        ):
            raise InvalidInput(
                f"{file.name} holds a {type(estimator).__name__}, not a scikit-learn estimator",
                {"path": str(file)},
            )
        return SklearnRuntime(estimator, file)


runtime = SklearnProvider()
