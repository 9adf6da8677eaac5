"""Bias assessments: a version run over labelled data, judged across groups of people.

`assess` checks everything it can before the model is loaded (the file, the sensitive
and label columns, the classes), runs the version through the serving runtimes
(`VersionScorer`, so any servable classifier works), hands the answers to the engine
(`governance/bias.py`, Fairlearn) and records one `Assessment(kind=bias)` with its
figures and chart under the policy version in force. Any bad input raises
InvalidInput naming the problem, and nothing is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelhub.domain.auth import Action, Caller
from modelhub.domain.bias import BiasOptions
from modelhub.domain.enums import Stage
from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.domain.names import parse_ref
from modelhub.errors import InvalidInput, NotFound
from modelhub.governance.frames import read_frame, require_columns
from modelhub.services.auth import AuthService
from modelhub.services.governance.assessments import AssessmentLog
from modelhub.services.governance.policy import PolicyService
from modelhub.services.governance.scoring import VersionScorer
from modelhub.services.registry import RegistryService
from modelhub.services.uploads import UploadService

if TYPE_CHECKING:
    import pandas as pd

CHART = "chart.png"


class BiasService:
    def __init__(
        self,
        registry: RegistryService,
        uploads: UploadService,
        auth: AuthService,
        policy: PolicyService,
        assessments: AssessmentLog,
        scorer: VersionScorer,
    ) -> None:
        self.registry = registry
        self.uploads = uploads
        self.auth = auth
        self.policy = policy
        self.assessments = assessments
        self.scorer = scorer

    def assess(self, caller: Caller, ref: str, path: Path, options: BiasOptions) -> Assessment:
        """Judge the version `ref` on the labelled rows of `path` across `sensitive`.

        PermissionDenied unless the caller may assess (developers: models they own);
        NotFound for an unknown version; InvalidInput (nothing recorded) for a file that
        cannot be read, a missing column, a label column with one class, labels the
        model does not know, or data without the model's features.
        """
        from modelhub.governance.bias import assess
        from modelhub.governance.bias_chart import render_chart

        parsed = parse_ref(ref)
        self.auth.authorize_owned(
            caller, Action.GOVERNANCE_ASSESS, self.registry.model_owner(parsed.name)
        )
        version = self.registry.get(str(parsed))
        model = self.registry.get_model(version.name)
        label, positive = options.label, options.positive
        sensitive = _column_names(options.sensitive, label)
        frame = read_frame(Path(path), options.format)
        require_columns(frame, sensitive, "sensitive", "the data")
        require_columns(frame, [label], "label", "the data")
        y_true = _labels(frame[label], label)
        thresholds = (
            self.policy.current()
            .requirements(model.type, model.tags, Stage.PRODUCTION)
            .thresholds.bias
        )
        with self.scorer.loaded(version) as loaded:
            inputs = loaded.inputs_for(frame, exclude=[label, *sensitive])
            scores = loaded.predict(loaded.matrix(frame, inputs), inputs)
        unknown = sorted(set(np.unique(y_true).tolist()) - set(scores.classes))
        if unknown:
            raise InvalidInput(
                f"label values {', '.join(map(repr, unknown[:10]))} of column {label!r} are "
                f"not classes {version.name}@{version.version} predicts "
                f"({', '.join(scores.classes[:20])})",
                {"field": "label", "unknown": unknown[:10], "classes": scores.classes[:20]},
            )
        result = assess(
            y_true, scores.labels, frame[sensitive], scores.classes, thresholds, positive
        )
        figures = result.figures | {"data": Path(path).name, "label": label}
        chart = render_chart(result.figures)
        return self.assessments.record(
            caller.name,
            version,
            ReviewKind.BIAS,
            result.passed,
            result.summary,
            figures,
            {CHART: chart},
        )

    def assess_upload(
        self, caller: Caller, ref: str, upload_id: str, options: BiasOptions
    ) -> Assessment:
        """`assess` on a file that arrived through /uploads (consumed either way)."""
        with self.uploads.consume(upload_id, caller.name) as (path, _):
            if not path.is_file():
                raise InvalidInput(
                    "the data of a bias assessment is one file", {"upload_id": upload_id}
                )
            return self.assess(caller, ref, path, options)

    def chart(self, caller: Caller, ref: str, assessment_id: int | None = None) -> bytes:
        """The PNG chart of the version's newest bias assessment (or of `assessment_id`)."""
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        version = self.registry.get(str(parse_ref(ref)))
        where = f"{version.name}@{version.version}"
        if assessment_id is None:
            found = self.assessments.latest(version, ReviewKind.BIAS)
        else:
            found = next(
                (
                    a
                    for a in self.assessments.all(version)
                    if a.id == assessment_id and a.kind is ReviewKind.BIAS
                ),
                None,
            )
        if found is None or CHART not in found.attachments:
            which = (
                "no bias assessment"
                if assessment_id is None
                else f"no bias assessment {assessment_id}"
            )
            raise NotFound(f"{where} has {which} with a chart", {"ref": where})
        return self.assessments.attachment(found, CHART)


def _column_names(sensitive: list[str], label: str) -> list[str]:
    names = [name.strip() for name in sensitive if name.strip()]
    if not names:
        raise InvalidInput("name at least one sensitive column", {"field": "sensitive"})
    if label in names:
        raise InvalidInput(
            f"the label column {label!r} cannot also be a sensitive column", {"field": "sensitive"}
        )
    return names


def _labels(column: pd.Series, label: str) -> np.ndarray:
    """The label column as strings, as the runtimes name classes (1.0 -> "1")."""
    missing = int(column.isna().sum())
    if missing:
        raise InvalidInput(
            f"label column {label!r} has {missing:,} missing values", {"field": "label"}
        )
    values = column.to_numpy()
    if np.issubdtype(values.dtype, np.floating) and np.all(np.mod(values, 1) == 0):
        values = values.astype(np.int64)
    labels = np.asarray(values).astype(str)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise InvalidInput(
            f"label column {label!r} holds one class ({classes[0]}); a bias assessment "
            "compares errors and selections, which needs at least two",
            {"field": "label", "classes": classes.tolist()},
        )
    return labels
