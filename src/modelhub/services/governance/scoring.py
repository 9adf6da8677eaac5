"""A version run over a table of rows through the serving runtimes, for assessments.

Any servable version can be assessed: its files are materialised (verified) once,
loaded by the runtime that serves them, and fed the table in batches. Which columns a
version reads comes from what is known of it:

- a tabular classifier trained here: its `features` (config.json), in that order;
- a text classifier trained here: one text column (its training `text_field`, else `text`);
- any other version with one 2-D numeric input (an ONNX graph): `feature_columns` when
  given, else every numeric column of the table not named in `exclude`, in file order,
  which must be as many as the input is wide;
- one BYTES input (text): a column of that input's name, else `text`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput
from modelhub.governance.frames import require_columns

if TYPE_CHECKING:
    import pandas as pd

    from modelhub.serving.runtimes.base import Runtime

BATCH_ROWS = 8192


@dataclass(frozen=True)
class ModelInputs:
    """How a table becomes the runtime's inputs: one tensor of numbers, or one of text."""

    tensor: str
    columns: list[str]  # the table's columns, in the order the tensor takes them
    text: bool = False


@dataclass(frozen=True)
class Scores:
    """A classifier's answers for every row: the label, and class probabilities when given."""

    labels: np.ndarray  # str, [rows]
    probabilities: np.ndarray | None  # float, [rows, classes]
    classes: list[str]


class LoadedVersion:
    def __init__(self, version: ModelVersion, runtime: Runtime) -> None:
        self.version = version
        self.runtime = runtime

    def inputs_for(
        self,
        frame: pd.DataFrame,
        exclude: Sequence[str] = (),
        feature_columns: Sequence[str] | None = None,
    ) -> ModelInputs:
        """Which columns of `frame` the version reads; InvalidInput naming what is wrong."""
        version, specs = self.version, self.runtime.info.signature.inputs
        where = "the data"
        trainer = version.inspection.get("trainer")
        features = version.inspection.get("features")
        if trainer == "tabular_classifier" and isinstance(features, list):
            names = [str(f) for f in features]
            require_columns(frame, names, "feature", where)
            return ModelInputs(specs[0].name, names)
        if len(specs) != 1:
            raise InvalidInput(
                f"{self.ref} takes {len(specs)} inputs; an assessment feeds one table to a "
                "model with one input",
                {"ref": self.ref},
            )
        spec = specs[0]
        if spec.dtype == "BYTES":
            hp = version.lineage.hyperparameters
            candidates = [spec.name, str(hp.get("text_field", "text")), "text"]
            found = next((name for name in candidates if name in frame.columns), None)
            if found is None:
                require_columns(frame, [candidates[0]], "text", where)
            return ModelInputs(spec.name, [str(found)], text=True)
        width = spec.shape[-1] if len(spec.shape) == 2 else None
        if feature_columns:
            names = list(feature_columns)
            require_columns(frame, names, "feature", where)
        else:
            names = [
                str(c)
                for c in frame.columns
                if c not in exclude and np.issubdtype(frame[c].dtype, np.number)
            ]
        if isinstance(width, int) and width > 0 and len(names) != width:
            raise InvalidInput(
                f"{self.ref} reads {width} features; the data has {len(names)} numeric "
                f"columns besides {', '.join(exclude) or 'none'}: {', '.join(names[:20])}",
                {"expected": width, "got": len(names)},
            )
        return ModelInputs(spec.name, names)

    @property
    def ref(self) -> str:
        return f"{self.version.name}@{self.version.version}"

    def matrix(self, frame: pd.DataFrame, inputs: ModelInputs) -> np.ndarray:
        """The rows as the runtime takes them (float32 features, or text)."""
        if inputs.text:
            return np.asarray(frame[inputs.columns[0]].astype(str).to_numpy(), dtype=object)
        try:
            return np.ascontiguousarray(frame[inputs.columns].to_numpy(dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"the feature columns of the data must be numbers: {exc}",
                {"columns": inputs.columns},
            ) from None

    def predict(self, rows: np.ndarray, inputs: ModelInputs) -> Scores:
        """Every row through the runtime, BATCH_ROWS at a time."""
        labels: list[np.ndarray] = []
        probabilities: list[np.ndarray] = []
        for start in range(0, len(rows), BATCH_ROWS):
            out = self.runtime.infer({inputs.tensor: rows[start : start + BATCH_ROWS]}, {})
            labels.append(np.asarray(out["label"]).astype(str) if "label" in out else np.array([]))
            if "probabilities" in out:
                probabilities.append(np.asarray(out["probabilities"], dtype=np.float64))
        classes = [str(c) for c in self.runtime.info.details.get("classes", [])]
        probs = np.concatenate(probabilities) if probabilities else None
        if labels and labels[0].size:
            joined = np.concatenate(labels)
        elif probs is not None:
            joined = self._labels_from(probs, classes)
        else:
            raise InvalidInput(
                f"{self.ref} answers with neither labels nor probabilities; only a "
                "classifier can be assessed this way",
                {"ref": self.ref},
            )
        return Scores(joined, probs, classes or sorted(set(joined.tolist())))

    def probabilities(self, rows: np.ndarray, inputs: ModelInputs) -> np.ndarray:
        """Class probabilities [rows, classes] (the scores permutation and attributions use)."""
        scores = self.predict(rows, inputs)
        if scores.probabilities is None:
            raise InvalidInput(f"{self.ref} gives no probabilities", {"ref": self.ref})
        return scores.probabilities

    @staticmethod
    def _labels_from(probs: np.ndarray, classes: list[str]) -> np.ndarray:
        index = probs.argmax(axis=1)
        names = np.array(classes if classes else [str(i) for i in range(probs.shape[1])])
        picked: np.ndarray = names[index]
        return picked


class VersionScorer:
    """Loads versions for assessments; `materialize` gives a verified local copy."""

    def __init__(self, materialize: Callable[[ModelVersion], Path]) -> None:
        self.materialize = materialize

    @contextmanager
    def loaded(self, version: ModelVersion) -> Iterator[LoadedVersion]:
        from modelhub.serving.runtimes import load_runtime

        folder = self.materialize(version)
        path = self._model_path(folder)
        runtime = load_runtime(path, trusted=version.trusted)
        try:
            yield LoadedVersion(version, runtime)
        finally:
            runtime.unload()

    @staticmethod
    def _model_path(folder: Path) -> Path:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_file():
            return entries[0]  # a single-file version (model.onnx)
        return folder
