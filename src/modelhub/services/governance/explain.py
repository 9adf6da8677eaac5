"""Explanations of a version, recorded as its explainability assessment.

Two methods:
- Integrated Gradients (Captum) for the PyTorch classifiers trained here: the tabular
  MLP per feature, the text classifier per word (`governance/attributions.py`);
- permutation importance for any servable version, ONNX included, run through the
  serving runtime by the `VersionScorer` (`governance/permutation.py`).

Everything about the input is checked before anything is recorded: the data must
hold the version's features (InvalidInput names the missing ones), a label column
must exist, a row to explain must be in the data. The verdict follows the policy's
`thresholds.explainability`: enough rows and, for Integrated Gradients, a mean
relative convergence delta within the bar.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelhub.domain.auth import Action, Caller
from modelhub.domain.enums import Stage
from modelhub.domain.explanation import (
    ExplainMethod,
    ExplainOptions,
    Explanation,
    Importance,
    LocalAttribution,
    LocalExplanation,
)
from modelhub.domain.governance import ReviewKind
from modelhub.domain.names import ModelRef, check_model_name
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput
from modelhub.governance import attributions, importance_chart, permutation
from modelhub.governance.frames import read_frame, require_columns
from modelhub.services.auth import AuthService
from modelhub.services.governance.assessments import AssessmentLog
from modelhub.services.governance.policy import PolicyService
from modelhub.services.governance.scoring import LoadedVersion, ModelInputs, VersionScorer
from modelhub.services.uploads import UploadService
from modelhub.stores.metadata.base import MetadataStore

if TYPE_CHECKING:
    import pandas as pd

MAX_ROWS = 1_000_000  # rows a data file may hold
MAX_IG_ROWS = 2_000  # tabular rows explained by Integrated Gradients (the first ones)
MAX_TEXT_ROWS = 200  # texts explained by LayerIntegratedGradients (the first ones)
MAX_PERMUTATION_ROWS = 100_000  # rows permutation importance scores (the first ones)
TRAINERS_WITH_GRADIENTS = ("tabular_classifier", "text_classifier")
RANKING_KEPT = 100  # features or words kept in the recorded figures


def require_finite(matrix: np.ndarray, columns: list[str]) -> None:
    """InvalidInput naming the feature columns with empty, NaN or infinite values."""
    finite = np.isfinite(matrix)
    if not finite.all():
        bad = [columns[i] for i in np.flatnonzero(~finite.all(axis=0))]
        rows = np.flatnonzero(~finite.all(axis=1))[:10].tolist()
        raise InvalidInput(
            f"feature column{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} "
            f"hold empty, NaN or infinite values (rows {', '.join(map(str, rows))} ...)",
            {"columns": bad, "rows": rows},
        )


class ExplanationService:
    def __init__(
        self,
        metadata: MetadataStore,
        auth: AuthService,
        uploads: UploadService,
        scorer: VersionScorer,
        assessments: AssessmentLog,
        policy: PolicyService,
    ) -> None:
        self.metadata = metadata
        self.auth = auth
        self.uploads = uploads
        self.scorer = scorer
        self.assessments = assessments
        self.policy = policy

    def explain(
        self, caller: Caller, model: str, version: int, path: Path, options: ExplainOptions
    ) -> Explanation:
        """Explain the version on the data file and record the assessment.

        Raises PermissionDenied (governance.assess; developers only on their own models),
        NotFound, InvalidInput for data that does not fit; nothing is recorded then.
        """
        name = check_model_name(model)
        self.auth.authorize_owned(caller, Action.GOVERNANCE_ASSESS, self.metadata.model_owner(name))
        target = self.metadata.resolve(ModelRef(name, str(int(version))))
        frame = read_frame(path, options.format, MAX_ROWS)
        if options.label is not None:
            require_columns(frame, [options.label], "label", path.name)
        if options.row is not None and options.row >= len(frame):
            raise InvalidInput(
                f"row {options.row} is not in the data: it has rows 0 to {len(frame) - 1}",
                {"field": "row", "rows": len(frame)},
            )
        folder = self.scorer.materialize(target)
        trainer = attributions.trainer_of(folder)
        method = options.method or (
            ExplainMethod.INTEGRATED_GRADIENTS
            if trainer in TRAINERS_WITH_GRADIENTS
            else ExplainMethod.PERMUTATION
        )
        if method is ExplainMethod.INTEGRATED_GRADIENTS and trainer not in TRAINERS_WITH_GRADIENTS:
            raise InvalidInput(
                f"{name}@{target.version} is not a PyTorch classifier trained here; Integrated "
                "Gradients needs its network: use --method permutation",
                {"field": "method"},
            )
        with self.scorer.loaded(target) as loaded:
            inputs = loaded.inputs_for(frame, exclude=[options.label] if options.label else [])
            if not inputs.text:
                require_finite(loaded.matrix(frame, inputs), inputs.columns)
            if method is ExplainMethod.PERMUTATION:
                found = self._permutation(loaded, inputs, frame, options)
            elif inputs.text:
                found = self._words(folder, frame, inputs, options)
            else:
                found = self._features(folder, loaded, inputs, frame, options)
        return self._record(caller, target, found)

    def explain_upload(
        self, caller: Caller, model: str, version: int, upload_id: str, options: ExplainOptions
    ) -> Explanation:
        with self.uploads.consume(upload_id, caller.name) as (path, _):
            if not path.is_file():
                raise InvalidInput("the data to explain is one file", {"upload_id": upload_id})
            return self.explain(caller, model, version, path, options)

    # -- the methods --------------------------------------------------------------

    def _features(
        self,
        folder: Path,
        loaded: LoadedVersion,
        inputs: ModelInputs,
        frame: pd.DataFrame,
        options: ExplainOptions,
    ) -> dict[str, Any]:
        matrix = loaded.matrix(frame, inputs)
        explained = matrix[:MAX_IG_ROWS]
        found = attributions.tabular_attributions(folder, explained, options.baseline)
        local = None
        if options.row is not None:
            one = attributions.tabular_attributions(
                folder,
                matrix[options.row : options.row + 1],
                options.baseline,
                reference=explained,
            )
            local = LocalExplanation(
                row=options.row,
                predicted=one.predicted[0],
                attributions=[
                    LocalAttribution(feature=f, value=float(v), attribution=float(a))
                    for f, v, a in zip(
                        one.features, matrix[options.row], one.values[0], strict=True
                    )
                ],
                relative_delta=float(one.relative_deltas[0]),
            )
        return {
            "method": ExplainMethod.INTEGRATED_GRADIENTS,
            "score": "mean |attribution| towards the predicted class (logit)",
            "baseline": f"data {options.baseline}" if options.baseline == "mean" else "zeros",
            "rows": len(explained),
            "ranking": importance_chart.rank_attributions(found.features, found.values),
            "deltas": found.relative_deltas,
            "local": local,
        }

    def _words(
        self, folder: Path, frame: pd.DataFrame, inputs: ModelInputs, options: ExplainOptions
    ) -> dict[str, Any]:
        texts = frame[inputs.columns[0]].astype(str).tolist()
        explained = texts[:MAX_TEXT_ROWS]
        found = attributions.text_attributions(folder, explained)
        local = None
        if options.row is not None:
            one = (
                found
                if options.row < len(explained)
                else attributions.text_attributions(folder, [texts[options.row]])
            )
            at = options.row if one is found else 0
            local = LocalExplanation(
                row=options.row,
                predicted=one.predicted[at],
                attributions=[LocalAttribution(feature=w, attribution=s) for w, s in one.words[at]],
                relative_delta=float(one.relative_deltas[at]),
            )
        return {
            "method": ExplainMethod.INTEGRATED_GRADIENTS,
            "score": "mean share of each text's attribution towards its predicted class",
            "baseline": "padding tokens",
            "rows": len(explained),
            "ranking": importance_chart.rank_words(found.words),
            "deltas": found.relative_deltas,
            "local": local,
        }

    def _permutation(
        self,
        loaded: LoadedVersion,
        inputs: ModelInputs,
        frame: pd.DataFrame,
        options: ExplainOptions,
    ) -> dict[str, Any]:
        if inputs.text:
            raise InvalidInput(
                f"{loaded.ref} reads one text column: permuting it says nothing about which "
                "words matter; use --method integrated_gradients",
                {"field": "method"},
            )
        matrix = loaded.matrix(frame, inputs)
        scored = matrix[:MAX_PERMUTATION_ROWS]
        target = None
        if options.label is not None:
            target = frame[options.label].astype(str).to_numpy()[:MAX_PERMUTATION_ROWS]
        result = permutation.permutation_importance(
            lambda rows: loaded.predict(rows, inputs).labels, scored, target
        )
        if target is not None and result.baseline_score == 0.0:
            raise InvalidInput(
                f"no prediction of {loaded.ref} matches the label column {options.label!r}; "
                "are its values the model's class names?",
                {"field": "label"},
            )
        local = None
        if options.row is not None:
            predicted, scores = permutation.local_occlusion(
                lambda rows: loaded.probabilities(rows, inputs), matrix, options.row
            )
            classes = loaded.predict(matrix[:1], inputs).classes
            local = LocalExplanation(
                row=options.row,
                predicted=classes[predicted] if predicted < len(classes) else str(predicted),
                attributions=[
                    LocalAttribution(feature=f, value=float(v), attribution=float(s))
                    for f, v, s in zip(inputs.columns, matrix[options.row], scores, strict=True)
                ],
            )
        what = "accuracy" if target is not None else "agreement with unpermuted predictions"
        return {
            "method": ExplainMethod.PERMUTATION,
            "score": f"drop in {what} (baseline {result.baseline_score:.4f})",
            "baseline": None,
            "rows": len(scored),
            "ranking": importance_chart.rank(inputs.columns, result.mean, result.std),
            "deltas": None,
            "local": local,
            "n_repeats": permutation.DEFAULT_REPEATS,
        }

    # -- the record ---------------------------------------------------------------

    def _record(self, caller: Caller, target: ModelVersion, found: dict[str, Any]) -> Explanation:
        model = self.metadata.get_model(target.name)
        bar = (
            self.policy.current()
            .requirements(model.type, model.tags, Stage.PRODUCTION)
            .thresholds.explainability
        )
        method: ExplainMethod = found["method"]
        rows: int = found["rows"]
        ranking: list[importance_chart.Ranked] = found["ranking"]
        deltas: np.ndarray | None = found["deltas"]
        mean_delta = float(np.mean(deltas)) if deltas is not None and len(deltas) else None
        reasons = []
        if rows < bar.min_rows:
            reasons.append(f"{rows} rows explained, the policy needs {bar.min_rows}")
        if mean_delta is not None and mean_delta > bar.max_convergence_delta:
            reasons.append(
                f"mean relative convergence delta {mean_delta:.4f} above "
                f"{bar.max_convergence_delta}"
            )
        top = ", ".join(r.name for r in ranking[:3])
        summary = f"{method.value} on {rows} rows; most important: {top}" + (
            f"; failed: {'; '.join(reasons)}" if reasons else ""
        )
        importances = [
            Importance(feature=r.name, importance=r.importance, std=r.std) for r in ranking
        ]
        local: LocalExplanation | None = found["local"]
        figures: dict[str, Any] = {
            "method": method.value,
            "score": found["score"],
            "baseline": found["baseline"],
            "rows": rows,
            "ranking": [i.model_dump() for i in importances[:RANKING_KEPT]],
            "mean_relative_delta": mean_delta,
            "max_relative_delta": float(np.max(deltas)) if deltas is not None else None,
            "thresholds": bar.model_dump(),
        }
        if "n_repeats" in found:
            figures["n_repeats"] = found["n_repeats"]
        if local is not None:
            figures["local"] = local.model_dump()
        chart = importance_chart.chart_png(
            ranking, f"{target.name}@{target.version}: {method.value}", found["score"]
        )
        assessment = self.assessments.record(
            caller.name,
            target,
            ReviewKind.EXPLAINABILITY,
            not reasons,
            summary,
            figures,
            {"importance.png": chart},
        )
        return Explanation(
            model=target.name,
            version=target.version,
            method=method,
            score=found["score"],
            baseline=found["baseline"],
            rows=rows,
            ranking=importances,
            mean_relative_delta=mean_delta,
            local=local,
            assessment=assessment,
            chart_png=base64.b64encode(chart).decode(),
        )
