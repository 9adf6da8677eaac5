"""Optimise a version: export it to ONNX, quantise it (int8) or halve it (fp16), measure
source and result on the same rows, and register the result when it stays accurate.

Who may optimise a model is who may register a version of it (models.register, on
models they own for developers). Every check comes first (the target, the tolerance,
the version, the data files' columns, what this machine can make), then the work
happens in a private temporary folder, and only a result within the tolerance (or
forced) is registered, through `RegistryService.register`, which stores nothing when
it fails. The rows are the source's own validation split, rebuilt from its run (the
pinned dataset, the spec's seed and fraction), or the `--eval` file when given;
a version whose split cannot be rebuilt needs `--eval`.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import Action, Caller
from modelhub.domain.enums import parse_enum
from modelhub.domain.names import parse_ref
from modelhub.domain.optimisation import (
    DEFAULT_MAX_ACCURACY_DROP,
    MAX_EVAL_ROWS,
    EvalRows,
    Method,
    OptimisationReport,
    Target,
    check_tolerance,
    decide,
    method_for,
    metric_drop,
    variant_metrics,
)
from modelhub.domain.records import Lineage, ModelVersion
from modelhub.errors import InvalidInput, NotFound
from modelhub.services.registry import RegisterRequest

if TYPE_CHECKING:
    from modelhub.services.auth import AuthService
    from modelhub.services.registry import RegistryService
    from modelhub.services.uploads import UploadService
    from modelhub.settings import Settings
    from modelhub.stores.artifacts.base import ArtifactStore
    from modelhub.stores.metadata.base import MetadataStore

Export = Callable[[Path, Path], Path]


@dataclass(frozen=True)
class OptimiseRequest:
    """One `modelhub optimize`: the same request from the API, the CLI and both clients.

    `to` takes its text ("int8"); `max_accuracy_drop` is a fraction (0.01: one point);
    `force` registers a result over the tolerance. The calibration and evaluation
    files travel beside the request (paths here, uploads over HTTP).
    """

    ref: str
    to: Target
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    force: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", parse_enum(Target, self.to, "to"))


def _export(folder: Path, target: Path) -> Path:
    from modelhub.serving.export import export_onnx

    return export_onnx(folder, target)


class OptimisationService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        registry: RegistryService,
        uploads: UploadService,
        auth: AuthService,
        export: Export = _export,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.artifacts = artifacts
        self.registry = registry
        self.uploads = uploads
        self.auth = auth
        self.export = export

    def optimise(
        self,
        caller: Caller,
        request: OptimiseRequest,
        calibration: Path | None = None,
        eval_data: Path | None = None,
    ) -> OptimisationReport:
        """Make, measure and (within tolerance, or forced) register an optimised version.

        Raises InvalidInput for a tolerance out of [0, 1], calibration data with a
        target other than int8 or without the model's columns, an evaluation file
        without them, a version no built-in exporter covers (naming its format),
        fp16 on a server without a GPU, or a version whose validation rows cannot be
        rebuilt and no `eval_data`; NotFound for a version that does not exist;
        PermissionDenied for a caller who may not register versions of the model.
        Nothing is registered when it raises.
        """
        from modelhub.serving import quantize

        tolerance = check_tolerance(request.max_accuracy_drop)
        parsed = parse_ref(request.ref)
        self.auth.authorize_owned(
            caller, Action.MODELS_REGISTER, self.registry.model_owner(parsed.name)
        )
        source = self.registry.get(str(parsed))
        ref = f"{source.name}@{source.version}"
        if calibration is not None and request.to is not Target.INT8:
            raise InvalidInput(
                f"--calibration calibrates int8 quantisation; --to {request.to.value} takes none",
                {"field": "calibration"},
            )
        method = method_for(request.to, calibrated=calibration is not None)
        quantize.check_machine(method)
        self.registry.check_request(RegisterRequest(name=source.name))
        work_root = self.settings.home / "optimise"
        work_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work_root, prefix="work-") as work_dir:
            work = Path(work_dir)
            return self._optimise(
                caller, source, ref, request, method, tolerance, work, calibration, eval_data
            )

    def _optimise(
        self,
        caller: Caller,
        source: ModelVersion,
        ref: str,
        request: OptimiseRequest,
        method: Method,
        tolerance: float,
        work: Path,
        calibration: Path | None,
        eval_data: Path | None,
    ) -> OptimisationReport:
        from modelhub.serving import quantize
        from modelhub.serving.measure import measure
        from modelhub.training.validation import MEASURABLE, file_rows

        original = work / "source"
        self.registry.download(ref, original)
        config = _config(original)
        trainer = config.get("trainer")
        if trainer not in MEASURABLE:
            raise InvalidInput(
                f"{ref} cannot be optimised: it is a {source.framework.value} model "
                f"({trainer or 'not the output of a built-in trainer'}); optimisation exports "
                f"to ONNX and measures {' and '.join(MEASURABLE)} models",
                {"ref": ref, "framework": source.framework.value, "trainer": trainer},
            )
        rows = (
            file_rows(eval_data, config, labelled=True, option="--eval")
            if eval_data is not None
            else self._validation_rows(source, ref, config, work)
        ).at_most(MAX_EVAL_ROWS)
        calibration_rows = (
            file_rows(calibration, config, labelled=False, option="--calibration")
            if calibration is not None
            else None
        )
        exported = self.export(original, work / "onnx")
        if calibration_rows is not None:
            quantize.check_calibration(exported, calibration_rows)
        result = (
            exported
            if method is Method.ONNX
            else quantize.optimise_folder(exported, work / "result", method, calibration_rows)
        )
        before = measure(original, rows)
        after = measure(result, rows)
        drop = round(metric_drop(before, after), 6)
        within, register, reason = decide(drop, tolerance, request.force)
        report = OptimisationReport(
            source=ref,
            target=request.to,
            method=method,
            measured_on=rows.source,
            before=before,
            after=after,
            accuracy_drop=drop,
            max_accuracy_drop=tolerance,
            within_tolerance=within,
            forced=request.force and not within,
            reason=reason,
        )
        if not register:
            return report
        registered = self.registry.register(
            self._register_request(source, ref, report, rows, calibration_rows),
            result,
            actor=caller.name,
        )
        return report.model_copy(
            update={
                "registered_version": registered.version,
                "reason": f"{reason}; registered as {registered.name}@{registered.version}",
            }
        )

    @staticmethod
    def _register_request(
        source: ModelVersion,
        ref: str,
        report: OptimisationReport,
        rows: EvalRows,
        calibration: EvalRows | None,
    ) -> RegisterRequest:
        lineage = source.lineage
        optimisation: dict[str, Any] = {
            "method": report.method.value,
            "max_accuracy_drop": report.max_accuracy_drop,
            "measured_on": rows.source,
            "forced": report.forced,
        }
        if calibration is not None:
            optimisation["calibration"] = calibration.source
            optimisation["calibration_rows"] = len(calibration.rows)
        return RegisterRequest(
            name=source.name,
            description=f"{report.method.value} of {ref}",
            lineage=Lineage(
                source_run=lineage.source_run,
                pipeline=lineage.pipeline,
                datasets=list(lineage.datasets),
                dataset_versions=list(lineage.dataset_versions),
                optimised_from=ref,
                optimisation=optimisation,
            ),
            metrics=variant_metrics(report),
            quantization=None if report.method is Method.ONNX else report.method.value,
            model_card=source.model_card,
        )

    def _validation_rows(
        self, source: ModelVersion, ref: str, config: dict[str, Any], work: Path
    ) -> EvalRows:
        from modelhub.training.validation import validation_rows

        def cannot(why: str) -> InvalidInput:
            fix = (
                "a char_lm version is measured only on its run's validation text"
                if config.get("trainer") == "char_lm"
                else "give --eval DATA, a labelled file with the model's input and label columns"
            )
            return InvalidInput(
                f"the validation rows of {ref} cannot be rebuilt ({why}); {fix}",
                {"field": "eval", "ref": ref},
            )

        run_id = source.lineage.source_run
        if run_id is None or not run_id.isdigit():
            raise cannot("it was not trained on this server")
        try:
            run = self.metadata.get_run(int(run_id))
        except NotFound:
            raise cannot(f"its run {run_id} is gone") from None
        if run.spec.get("trainer") == "char_lm_preference":
            # it writes a char_lm folder, but its run read preference pairs, not a corpus
            raise cannot("its run trained char_lm_preference, not char_lm")
        pinned = run.inputs.get("datasets") or []
        if len(pinned) != 1:
            raise cannot(f"its run read {len(pinned)} datasets")
        if run.spec.get("preprocessing"):
            raise cannot("its run preprocessed the dataset")
        dataset = pinned[0]
        local = work / f"validation.{dataset['format']}"
        try:
            self.artifacts.materialize(dataset["digest"], local)
        except NotFound:
            raise cannot(f"the dataset {dataset['name']}@{dataset['version']} is gone") from None
        return validation_rows(
            str(config["trainer"]),
            local,
            dict(run.spec.get("hyperparameters") or {}),
            int(run.spec.get("seed", 0)),
            float(run.spec.get("validation_split", 0.2)),
            f"{dataset['name']}@{dataset['version']}",
            config,
        )

    def optimise_uploads(
        self,
        caller: Caller,
        request: OptimiseRequest,
        calibration_upload: str | None = None,
        eval_upload: str | None = None,
    ) -> OptimisationReport:
        """`optimise` with its data files sent through /uploads (consumed either way)."""
        with contextlib.ExitStack() as stack:
            calibration = (
                stack.enter_context(self._one_file(caller, calibration_upload, "calibration"))
                if calibration_upload
                else None
            )
            eval_data = (
                stack.enter_context(self._one_file(caller, eval_upload, "eval"))
                if eval_upload
                else None
            )
            return self.optimise(caller, request, calibration, eval_data)

    @contextlib.contextmanager
    def _one_file(self, caller: Caller, upload_id: str, field: str) -> Iterator[Path]:
        with self.uploads.consume(upload_id, caller.name) as (path, _):
            if not path.is_file():
                raise InvalidInput(f"the {field} data is one file", {"field": field})
            yield path


def _config(folder: Path) -> dict[str, Any]:
    try:
        config: Any = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}
