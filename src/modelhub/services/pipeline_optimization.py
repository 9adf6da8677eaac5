"""Optimising a pipeline (the plan's optimizeTrainingPipeline): profile, propose, measure, accept.

`optimize` queues a profiling run: a normal run of the pipeline on the scheduler that
stops after `budget_steps` steps and times its phases (modelhub.training.phases). It
registers no model. When it finishes, `profiled` (called by the training service in
place of registering) reads its profile, asks `pipeline_proposals.propose` what to
change and, if anything, queues the changed spec as a candidate run over the same
number of training samples (the same share of an epoch: a bigger batch takes fewer
steps, as a full run of the changed pipeline would). When that one finishes, the
optimisation is judged from the two runs: samples/s before and after, and the
validation metric within the tolerance. Nothing becomes a pipeline version until the
user accepts, and only if the pipeline is still at the version that was profiled.

The optimisation is stored in the runs themselves: its id is the profiling run's, its
budget, proposed changes and acceptance are in that run's `inputs["profile"]`, the
candidate run carries `inputs["profile"]["of"]`; everything else is read from them.
"""

from __future__ import annotations

import math
from typing import Any

from modelhub.domain.auth import Action, Caller
from modelhub.domain.pipeline_optimization import (
    MAX_BUDGET_STEPS,
    MAX_TOLERANCE,
    MIN_BUDGET_STEPS,
    WORKING,
    OptimizationStatus,
    PhaseProfile,
    PipelineOptimization,
    ProposedChange,
)
from modelhub.domain.pipelines import PipelineSpec
from modelhub.domain.runs import Pipeline, Run, RunStatus
from modelhub.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from modelhub.services.auth import AuthService
from modelhub.services.training import TrainingService
from modelhub.stores.metadata.base import MetadataStore
from modelhub.training.pipeline_proposals import PROFILED, compare, helps, profile_of, propose
from modelhub.training.spec import stored_spec

BASELINE, CANDIDATE = "baseline", "candidate"
MAX_SCANNED_RUNS = 1000  # a pipeline's runs looked through for its optimisations
FAILED = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})


class PipelineOptimizationService:
    def __init__(self, metadata: MetadataStore, auth: AuthService, training: TrainingService):
        self.metadata = metadata
        self.auth = auth
        self.training = training
        training.on_profiled(self.profiled)

    def optimize(
        self, caller: Caller, name: str, budget_steps: int, tolerance: float
    ) -> PipelineOptimization:
        """Queue the profiling run of pipeline `name`; the optimisation, `profiling`.

        InvalidInput for a budget or tolerance out of range or a pipeline no built-in
        trainer profiles; NotFound for an unknown pipeline; Conflict while another
        optimisation of it is still working.
        """
        self.auth.authorize(caller, Action.RUNS_START)
        if not MIN_BUDGET_STEPS <= budget_steps <= MAX_BUDGET_STEPS:
            raise InvalidInput(
                f"budget_steps must be {MIN_BUDGET_STEPS}-{MAX_BUDGET_STEPS}, not {budget_steps}",
                {"field": "budget_steps"},
            )
        if not (math.isfinite(tolerance) and 0 <= tolerance <= MAX_TOLERANCE):
            raise InvalidInput(
                f"tolerance must be 0-{MAX_TOLERANCE:g}, not {tolerance}", {"field": "tolerance"}
            )
        pipeline = self.metadata.get_pipeline(name)
        spec = stored_spec(pipeline.spec)
        if spec.trainer not in PROFILED or spec.federated is not None:
            raise InvalidInput(
                f"pipeline {name!r} trains with {spec.trainer}"
                + (" (federated)" if spec.federated is not None else "")
                + "; only single-process runs of "
                + ", ".join(sorted(PROFILED))
                + " can be profiled",
                {"pipeline": name, "trainer": spec.trainer},
            )
        for found in self._baselines(name):
            view = self._view(found, pipeline)
            if view.status in WORKING:
                raise Conflict(
                    f"optimisation {view.id} of {name!r} is still {view.status.value}",
                    {"pipeline": name, "optimization": view.id},
                )
        profile = {"role": BASELINE, "budget_steps": budget_steps, "tolerance": tolerance}
        run = self.training.queue_run(
            pipeline,
            pipeline.spec,
            caller.name,
            extra_inputs={"profile": profile},
            action="pipelines.optimize",
        )
        return self._view(run, pipeline)

    def get(
        self, caller: Caller, name: str, optimization: int | None = None
    ) -> PipelineOptimization:
        """One optimisation of pipeline `name` (the newest when `optimization` is None)."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        pipeline = self.metadata.get_pipeline(name)
        return self._view(self._baseline(name, optimization), pipeline)

    def list_optimizations(self, caller: Caller, name: str) -> list[PipelineOptimization]:
        """Every optimisation of pipeline `name`, newest first."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        pipeline = self.metadata.get_pipeline(name)
        return [self._view(run, pipeline) for run in self._baselines(name)]

    def accept(
        self, caller: Caller, name: str, optimization: int | None = None
    ) -> PipelineOptimization:
        """The proposed spec becomes the pipeline's next version.

        Conflict when it was accepted already, or the pipeline has changed since it was
        profiled (whatever the optimisation's state); IllegalTransition when it proposes
        nothing (yet).
        """
        self.auth.authorize(caller, Action.PIPELINES_WRITE)
        pipeline = self.metadata.get_pipeline(name)
        baseline = self._baseline(name, optimization)
        view = self._view(baseline, pipeline)
        if view.status is OptimizationStatus.ACCEPTED:
            raise Conflict(
                f"optimisation {view.id} was accepted already, as version {view.accepted_version}",
                {"optimization": view.id, "version": view.accepted_version},
            )
        if pipeline.version != view.pipeline_version:  # whatever its state: it never will fit
            raise Conflict(
                f"pipeline {name!r} changed since optimisation {view.id} profiled version "
                f"{view.pipeline_version} (it is at version {pipeline.version}); "
                "optimise it again",
                {"optimization": view.id, "profiled": view.pipeline_version},
            )
        if view.status is not OptimizationStatus.PROPOSED or view.candidate_spec is None:
            raise IllegalTransition(
                f"optimisation {view.id} proposes nothing to accept: {view.message}",
                {"optimization": view.id, "status": view.status.value},
            )
        saved = self.training.save_version(
            caller, name, view.candidate_spec, view.pipeline_version, f"optimization {view.id}"
        )
        profile = {**baseline.inputs["profile"], "accepted_version": saved.version}
        self.metadata.record_progress(
            baseline.id, {"inputs": {**baseline.inputs, "profile": profile}}
        )
        return self._view(self.metadata.get_run(baseline.id), saved)

    # -- what the training service calls when a profiling run finishes -------------

    def profiled(self, run: Run, metrics: dict[str, float]) -> None:
        """A profiling run finished: for the baseline, propose and queue the candidate
        (once, even when a restart finishes the run again)."""
        profile = run.inputs["profile"]
        if profile.get("role") != BASELINE or "changes" in profile:
            return
        spec = stored_spec(run.spec)
        before = profile_of(run.id, metrics, spec.trainer)
        record: dict[str, Any] = {**profile, "changes": [], "notes": []}
        if before is None:
            record["notes"] = ["the profiling run measured no phase"]
        else:
            proposal = propose(spec, before, _train_rows(run, spec), run.resources.gpus > 0)
            record["changes"] = [c.model_dump(mode="json") for c in proposal.changes]
            record["notes"] = proposal.notes
            if proposal.spec is not None:
                record["candidate_spec"] = proposal.spec
                record["candidate_run"] = self._queue_candidate(run, proposal.spec, before)
        self.metadata.record_progress(run.id, {"inputs": {**run.inputs, "profile": record}})

    def _queue_candidate(
        self, baseline: Run, spec_data: dict[str, Any], before: PhaseProfile
    ) -> int:
        for run in self.metadata.list_runs(pipeline=baseline.pipeline, limit=MAX_SCANNED_RUNS):
            if (run.inputs.get("profile") or {}).get("of") == baseline.id:
                return run.id  # queued by an earlier finish of the baseline
        spec = stored_spec(spec_data)
        per_step = int(getattr(spec.trainer_hyperparameters(), "batch_size", 1) or 1)
        per_step *= spec.distributed.workers if spec.distributed is not None else 1
        steps = max(1, math.ceil(before.samples / per_step))  # the same samples as before
        pipeline = self.metadata.get_pipeline(baseline.pipeline)
        if pipeline.version != baseline.pipeline_version:  # the run is of the version profiled
            pipeline = pipeline.model_copy(update={"version": baseline.pipeline_version})
        inputs = {
            "profile": {
                "role": CANDIDATE,
                "of": baseline.id,
                "budget_steps": steps,
                "tolerance": baseline.inputs["profile"]["tolerance"],
            }
        }
        candidate = self.training.queue_run(
            pipeline,
            spec_data,
            baseline.created_by,
            extra_inputs=inputs,
            action="pipelines.optimize",
        )
        return candidate.id

    # -- reading an optimisation back from its runs --------------------------------

    def _baselines(self, name: str) -> list[Run]:
        runs = self.metadata.list_runs(pipeline=name, limit=MAX_SCANNED_RUNS)
        return [r for r in runs if (r.inputs.get("profile") or {}).get("role") == BASELINE]

    def _baseline(self, name: str, optimization: int | None) -> Run:
        if optimization is None:
            found = self._baselines(name)
            if not found:
                raise NotFound(
                    f"pipeline {name!r} has no optimisation; start one with "
                    f"`modelhub pipelines optimize {name}`",
                    {"pipeline": name},
                )
            return found[0]
        try:
            run = self.metadata.get_run(optimization)
        except NotFound:
            run = None
        role = (run.inputs.get("profile") or {}).get("role") if run is not None else None
        if run is None or run.pipeline != name or role != BASELINE:
            raise NotFound(
                f"pipeline {name!r} has no optimisation {optimization}",
                {"pipeline": name, "optimization": optimization},
            )
        return run

    def _view(self, baseline: Run, pipeline: Pipeline) -> PipelineOptimization:
        profile = baseline.inputs["profile"]
        spec = stored_spec(baseline.spec)
        fields: dict[str, Any] = {
            "id": baseline.id,
            "pipeline": baseline.pipeline,
            "pipeline_version": baseline.pipeline_version,
            "budget_steps": int(profile["budget_steps"]),
            "tolerance": float(profile["tolerance"]),
            "baseline_run": baseline.id,
            "candidate_run": profile.get("candidate_run"),
            "changes": [ProposedChange.model_validate(c) for c in profile.get("changes", [])],
            "notes": list(profile.get("notes", [])),
            "candidate_spec": profile.get("candidate_spec"),
            "accepted_version": profile.get("accepted_version"),
            "created_by": baseline.created_by,
            "created_at": baseline.created_at,
        }
        if baseline.status in FAILED:
            return _made(fields, OptimizationStatus.FAILED, _ended(baseline, "the profiling run"))
        if baseline.status is not RunStatus.COMPLETED or "changes" not in profile:
            return _made(
                fields,
                OptimizationStatus.PROFILING,
                f"profiling run {baseline.id} is {baseline.status.value}",
            )
        before = profile_of(baseline.id, baseline.metrics, spec.trainer)
        fields["before"] = before
        if not fields["changes"]:
            return _made(
                fields,
                OptimizationStatus.NOTHING_TO_PROPOSE,
                "no change would help: " + ("; ".join(fields["notes"]) or "no phase stands out"),
            )
        candidate = self.metadata.get_run(int(profile["candidate_run"]))
        if candidate.status in FAILED:
            return _made(fields, OptimizationStatus.FAILED, _ended(candidate, "the changed run"))
        if candidate.status is not RunStatus.COMPLETED:
            return _made(
                fields,
                OptimizationStatus.MEASURING,
                f"the changed pipeline's run {candidate.id} is {candidate.status.value}",
            )
        after = profile_of(candidate.id, candidate.metrics, spec.trainer)
        if before is None or after is None:
            return _made(fields, OptimizationStatus.FAILED, "a profiling run measured no phase")
        gain, check = compare(before, after, spec.trainer, fields["tolerance"])
        fields |= {"after": after, "throughput_gain": gain, "validation": check}
        measured = (
            f"{before.samples_per_s:.0f} -> {after.samples_per_s:.0f} samples/s ({gain:.2f}x); "
            f"{check.metric} {_value(check.before)} -> {_value(check.after)}"
        )
        if not helps(gain, check):
            why = "validation did not hold" if not check.holds else "not measurably faster"
            return _made(
                fields, OptimizationStatus.NO_IMPROVEMENT, f"no change helps ({why}): {measured}"
            )
        if fields["accepted_version"] is not None:
            return _made(
                fields,
                OptimizationStatus.ACCEPTED,
                f"accepted as version {fields['accepted_version']}: {measured}",
            )
        if pipeline.version != baseline.pipeline_version:
            return _made(
                fields,
                OptimizationStatus.SUPERSEDED,
                f"pipeline changed since (version {pipeline.version} now): {measured}",
            )
        return _made(fields, OptimizationStatus.PROPOSED, f"proposed: {measured}")


def _made(fields: dict[str, Any], status: OptimizationStatus, message: str) -> PipelineOptimization:
    return PipelineOptimization(status=status, message=message, **fields)


def _ended(run: Run, what: str) -> str:
    return f"{what} {run.id} {run.status.value}" + (f": {run.error}" if run.error else "")


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _train_rows(run: Run, spec: PipelineSpec) -> int | None:
    rows = sum(int(d.get("rows") or 0) for d in run.inputs.get("datasets", []))
    return int(rows * (1 - spec.validation_split)) if rows else None
