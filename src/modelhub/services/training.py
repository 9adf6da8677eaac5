"""Training use cases: pipelines, runs, and what the scheduler needs from the platform.

Creating a pipeline checks the spec and everything it names (datasets, base model,
script) and reports every problem at once. Starting a run pins what it will read
(dataset versions and digests, the base version) so that a retry or a resume trains
on exactly the same inputs. The scheduler (an engine) calls back into `prepare`
and `register_result`; it never sees the registry itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import Action, Caller
from modelhub.domain.engines import EngineRecord
from modelhub.domain.enums import Approval, Framework
from modelhub.domain.estimates import Estimate
from modelhub.domain.pipelines import PipelineSpec, Priority, parse_memory
from modelhub.domain.records import Dataset, Lineage, ModelVersion
from modelhub.domain.runs import (
    ACTIVE,
    FINAL,
    Alert,
    Checkpoint,
    MetricPoint,
    Pipeline,
    Run,
    RunEvent,
    RunStatus,
    check_run_move,
)
from modelhub.errors import IllegalTransition, InvalidInput, ModelhubError, NotFound
from modelhub.services.auth import AuthService
from modelhub.services.engines import EngineBook, EngineView, run_need
from modelhub.services.federated import (
    column_reader,
    federated_job,
    federated_lineage,
    federated_problems,
)
from modelhub.services.plugin_engines import plugin_engines, plugin_views
from modelhub.services.ray_engine import engine_problems, ray_engine, ray_executor, ray_view
from modelhub.services.registry import RegisterRequest, RegistryService
from modelhub.settings import Settings
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import AuditDraft, MetadataStore, PipelineDraft, RunDraft
from modelhub.training.context import LocalContext
from modelhub.training.estimate import estimate, guess_parameters
from modelhub.training.scheduler import Capacity, Scheduler, SchedulerConfig, host_capacity
from modelhub.training.scheduler.engines import TrainingEngine
from modelhub.training.spec import parse_spec, spec_error, stored_spec
from modelhub.training.trainers import installed_trainers

if TYPE_CHECKING:
    from modelhub.training.ray_engine import RayExecutor

log = logging.getLogger(__name__)

RegisteredVersionHook = Callable[[ModelVersion, str], object]
ProfiledRunHook = Callable[[Run, dict[str, float]], None]

# Training speed assumed for a trainer until a run on this host has measured one.
DEFAULT_SAMPLES_PER_S: dict[str, float] = {
    "tabular_classifier": 20_000.0,
    "text_classifier": 150.0,
    "char_lm": 400.0,
    "char_lm_preference": 400.0,
    "script": 1_000.0,
}
LOG_CHUNK = 64 * 1024
MAX_RUNS_PAGE = 1000


@dataclass
class Inputs:
    """What a spec's names resolve to today: dataset versions and the base version."""

    datasets: list[Dataset] = field(default_factory=list)
    base: ModelVersion | None = None


def _pinned(inputs: Inputs) -> dict[str, Any]:
    """The run's record of its inputs, so a retry or resume reads the same bytes."""
    pinned: dict[str, Any] = {
        "datasets": [
            {
                "name": d.name,
                "version": d.version,
                "digest": d.digest,
                "format": d.format.value,
                "rows": d.rows,
            }
            for d in inputs.datasets
        ]
    }
    if inputs.base is not None:
        pinned["base_version"] = f"{inputs.base.name}@{inputs.base.version}"
    return pinned


@dataclass(frozen=True)
class CreatedPipeline:
    pipeline: Pipeline
    estimate: Estimate


@dataclass(frozen=True)
class _Checked:
    """A spec that passed every check, with what it resolved to."""

    spec: PipelineSpec
    inputs: Inputs
    script: bytes | None
    current: int


@dataclass(frozen=True)
class RunsPage:
    runs: list[Run]
    total: int


@dataclass(frozen=True)
class PipelineRuns:
    """How many runs a pipeline has had, and the status of its newest."""

    count: int
    last_status: RunStatus


class TrainingService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        registry: RegistryService,
        auth: AuthService,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.artifacts = artifacts
        self.registry = registry
        self.auth = auth
        self.scheduler: Scheduler | None = None
        self._capacity: Capacity | None = None
        self._registered_hooks: list[RegisteredVersionHook] = []
        self._profiled_hook: ProfiledRunHook | None = None
        self.engine_book = EngineBook(
            metadata, self.capacity, lambda: self.scheduler, self._cluster_view, plugin_views
        )

    def on_registered(self, hook: RegisteredVersionHook) -> None:
        """Call `hook(version, actor)` after each run registers its version (a drift
        reference from its dataset); a hook that raises is logged, never fatal."""
        self._registered_hooks.append(hook)

    def on_profiled(self, hook: ProfiledRunHook) -> None:
        """Call `hook(run, metrics)` when a profiling run finishes, in place of registering
        its output (the pipeline optimisation service reads its phase figures)."""
        self._profiled_hook = hook

    # -- pipelines ---------------------------------------------------------------

    def create_pipeline(
        self, caller: Caller, text: str, files: dict[str, bytes] | None = None
    ) -> CreatedPipeline:
        """Validate a spec and what it names, store it, and estimate one run of it.

        `files` holds the script the spec names (path relative to pipeline.yaml),
        read by the caller: the CLI from beside the YAML, the API from the request.
        """
        checked = self._check(caller, text, files)
        spec, inputs, script = checked.spec, checked.inputs, checked.script
        blob = self.artifacts.put_stream([script]) if script is not None else None
        digest = blob.digest if blob is not None else None
        draft = PipelineDraft(
            name=spec.name,
            type=spec.type.value,
            trainer=spec.trainer,
            priority=spec.priority,
            spec=spec.model_dump(mode="json"),
            created_by=caller.name,
            script_digest=digest,
            replaces=checked.current,
        )
        try:
            pipeline = self.metadata.save_pipeline(
                draft,
                AuditDraft(caller.name, "pipelines.save", spec.name, {"trainer": draft.trainer}),
            )
        except BaseException:
            if blob is not None and blob.created:
                self.artifacts.delete(blob.digest)  # a new blob nothing refers to yet
            raise
        return CreatedPipeline(pipeline, self.estimate(spec, inputs))

    def check_pipeline(
        self, caller: Caller, text: str, files: dict[str, bytes] | None = None
    ) -> Estimate:
        """What `create_pipeline` would say of this spec, storing nothing: every problem
        at once (InvalidInput, as there), or the estimate of one run."""
        checked = self._check(caller, text, files)
        return self.estimate(checked.spec, checked.inputs)

    def _check(self, caller: Caller, text: str, files: dict[str, bytes] | None) -> _Checked:
        self.auth.authorize(caller, Action.PIPELINES_WRITE)
        spec = parse_spec(text)
        self._authorize_code(caller, spec)
        current = self._current_version(caller, spec.name)
        inputs, problems = self._resolve(spec)
        # Why the named engine is missing, where we can say; else that it is.
        problems += engine_problems(spec, self.settings) or self.engine_book.spec_problems(spec)
        problems += federated_problems(spec, inputs.datasets, column_reader(self.artifacts))
        script = None
        if spec.script is not None:
            script = (files or {}).get(spec.script.path)
            if script is None:
                problems.append(("script.path", f"{spec.script.path} was not sent or not found"))
        if problems:
            raise spec_error(problems)
        return _Checked(spec, inputs, script, current)

    def _authorize_code(self, caller: Caller, spec: PipelineSpec) -> None:
        """A script pipeline runs its author's code on the server: saving or starting
        one needs `code.run` on top of the pipeline and run permissions; one whose
        results register trusted (`result_model.trust`) needs `models.trust`."""
        if spec.trainer == "script":
            self.auth.authorize(caller, Action.CODE_RUN)
        if spec.result_model.trust:  # its results may be pickles served with trust
            self.auth.authorize(caller, Action.MODELS_TRUST)

    def _current_version(self, caller: Caller, name: str) -> int:
        """The version a new one replaces (0: a new name), once the caller may replace it.

        Developers add versions only to pipelines they made: whoever writes the spec
        decides what the owner's next run executes.
        """
        try:
            current = self.metadata.get_pipeline(name)
        except NotFound:
            return 0
        self.auth.authorize_owned(caller, Action.PIPELINES_WRITE, current.created_by, "pipelines")
        return current.version

    def _resolve(
        self, spec: PipelineSpec, collect: bool = True
    ) -> tuple[Inputs, list[tuple[str, str]]]:
        """The datasets and base version the spec names, and a problem for each missing one.

        With `collect` false the first problem is raised as it comes (NotFound, ...).
        """
        inputs, problems = Inputs(), []
        for index, ref in enumerate(spec.datasets):
            try:
                inputs.datasets.append(self.metadata.get_dataset(ref.name, ref.version))
            except NotFound as exc:
                if not collect:
                    raise
                problems.append((f"datasets[{index}]", exc.message))
        if spec.base_model is not None:
            try:
                inputs.base = self._base_version(spec.base_model)
                check_base_trainer(spec, inputs.base)
            except ModelhubError as exc:
                if not collect:
                    raise
                problems.append(("base_model", exc.message))
        return inputs, problems

    def _base_version(self, ref: str) -> ModelVersion:
        version = self.registry.get(ref)
        if version.approval is Approval.REJECTED:
            raise InvalidInput(
                f"{version.name}@{version.version} is rejected and cannot be trained from",
                {"base_model": ref},
            )
        return version

    def estimate(self, spec: PipelineSpec, inputs: Inputs) -> Estimate:
        rows, columns = 0, dict[str, str]()
        for dataset in inputs.datasets:
            rows += dataset.rows
            columns |= dataset.columns
        base = inputs.base.parameters if inputs.base is not None else None
        parameters = guess_parameters(spec, columns, base)
        speed, measured = self._measured_speed(spec.trainer)
        result = estimate(spec, parameters, "fp32", rows, speed, self.settings)
        placed = self.engine_book.placement(spec)
        notes = result.notes
        if not measured:
            notes += (
                f"; speed assumed ({speed:g} samples/s): no {spec.trainer} run measured here yet"
            )
        return replace(
            result, notes=notes, engine=placed.engine, start_in_seconds=placed.start_in_seconds
        )

    def _measured_speed(self, trainer: str) -> tuple[float, bool]:
        runs = [
            run.id
            for run in self.metadata.list_runs([RunStatus.COMPLETED], limit=50)
            if run.spec.get("trainer") == trainer
        ]
        measured = self.metadata.metric_values(runs, "samples_per_s")
        for run_id in runs:  # the newest run that measured its speed
            if measured.get(run_id):
                return statistics.median(measured[run_id]), True
        return DEFAULT_SAMPLES_PER_S.get(trainer, 1_000.0), False

    def pipeline_estimate(self, caller: Caller, name: str) -> Estimate:
        """What one run of the stored pipeline would need and cost if started now
        (with the datasets it names as they are today; one it cannot find counts none)."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        spec = stored_spec(self.metadata.get_pipeline(name).spec)
        inputs, _ = self._resolve(spec)
        return self.estimate(spec, inputs)

    def get_pipeline(self, caller: Caller, name: str) -> Pipeline:
        self.auth.authorize(caller, Action.TRAINING_READ)
        return self.metadata.get_pipeline(name)

    def list_pipelines(self, caller: Caller) -> list[Pipeline]:
        self.auth.authorize(caller, Action.TRAINING_READ)
        return self.metadata.list_pipelines()

    # -- runs --------------------------------------------------------------------

    def capacity(self) -> Capacity:
        if self._capacity is None:
            s = self.settings
            memory = parse_memory(s.train_memory) if s.train_memory else None
            self._capacity = host_capacity(s.train_cpus, memory, s.train_gpus)
        return self._capacity

    def authorize_start(self, caller: Caller, spec: PipelineSpec) -> None:
        """What starting a run of `spec` needs of `caller`, checked before anything is
        stored (a study checks it once for all its trials)."""
        self.auth.authorize(caller, Action.RUNS_START)
        self._authorize_code(caller, spec)
        owner = self.registry.model_owner(spec.result_model.name)
        self.auth.authorize_owned(caller, Action.MODELS_REGISTER, owner)

    def start(self, caller: Caller, name: str, priority: Priority | None = None) -> Run:
        """Queue a run of the pipeline, pinned to today's dataset and base versions."""
        self.auth.authorize(caller, Action.RUNS_START)
        pipeline = self.metadata.get_pipeline(name)
        spec = stored_spec(pipeline.spec)
        self._authorize_code(caller, spec)  # someone else's script runs as the server too
        result_owner = self.registry.model_owner(spec.result_model.name)
        self.auth.authorize_owned(caller, Action.MODELS_REGISTER, result_owner)
        return self.queue_run(pipeline, pipeline.spec, caller.name, priority)

    def start_trial(
        self, pipeline: Pipeline, hyperparameters: dict[str, Any], trial: dict[str, Any]
    ) -> Run:
        """Queue one tuning trial: a run of `pipeline` with `hyperparameters` put over the
        spec's, for the study's owner (authorised when the study was made). It registers
        no version: `trial` (study, number) in its inputs says so; the study registers
        its best trial's result at the end (`register_trial`)."""
        data = dict(pipeline.spec)
        data.pop("search", None)
        data["hyperparameters"] = dict(data.get("hyperparameters") or {}) | hyperparameters
        spec = stored_spec(data).model_dump(mode="json")
        return self.queue_run(pipeline, spec, pipeline.created_by, extra_inputs={"trial": trial})

    def queue_run(
        self,
        pipeline: Pipeline,
        spec_data: dict[str, Any],
        created_by: str,
        priority: Priority | None = None,
        extra_inputs: dict[str, Any] | None = None,
        action: str = "runs.start",
    ) -> Run:
        """Queue a run of `spec_data` (the pipeline's spec, or a changed copy of it) as a run
        of `pipeline`, for a caller already authorised; `extra_inputs` join its inputs."""
        spec = stored_spec(spec_data)
        resources = run_need(spec)  # every worker's share: a distributed run starts whole
        self.engine_book.check_fits(spec)
        resolved, _ = self._resolve(spec, collect=False)
        inputs = _pinned(resolved) | (extra_inputs or {})
        inputs["estimate"] = asdict(self.estimate(spec, resolved))
        if pipeline.script_digest:
            inputs["script_digest"] = pipeline.script_digest
        chosen = priority or spec.priority
        run = self.metadata.create_run(
            RunDraft(
                pipeline=pipeline.name,
                pipeline_version=pipeline.version,
                priority=chosen,
                resources=resources,
                created_by=created_by,
                max_attempts=self.settings.train_max_attempts,
                result_model=spec.result_model.name,
                spec=spec_data,
                inputs=inputs,
                requested_engine=spec.engine,
            ),
            AuditDraft(
                created_by, action, pipeline.name, {"priority": chosen.value} | (extra_inputs or {})
            ),
        )
        self.notify()
        return run

    def save_version(
        self, caller: Caller, name: str, spec_data: dict[str, Any], replaces: int, why: str
    ) -> Pipeline:
        """Store `spec_data` as the next version of pipeline `name`, which must still be at
        version `replaces` (Conflict otherwise); the caller must be allowed to write it."""
        self.auth.authorize(caller, Action.PIPELINES_WRITE)
        current = self.metadata.get_pipeline(name)
        self.auth.authorize_owned(caller, Action.PIPELINES_WRITE, current.created_by, "pipelines")
        spec = stored_spec(spec_data)
        self._authorize_code(caller, spec)
        draft = PipelineDraft(
            name=name,
            type=spec.type.value,
            trainer=spec.trainer,
            priority=spec.priority,
            spec=spec.model_dump(mode="json"),
            created_by=caller.name,
            script_digest=current.script_digest,
            replaces=replaces,
        )
        details = {"trainer": draft.trainer, "why": why}
        return self.metadata.save_pipeline(
            draft, AuditDraft(caller.name, "pipelines.save", name, details)
        )

    def active_runs(self) -> int:
        """How many runs are queued, waiting to retry or training now."""
        return len(
            self.metadata.list_runs([RunStatus.QUEUED, RunStatus.PENDING, RunStatus.RUNNING])
        )

    def engines(self, caller: Caller) -> list[EngineRecord]:
        """The engines this server can train on, with capacity, queue and recent figures."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        return self.engine_book.records()

    def _cluster_view(self) -> EngineView | None:
        """The Ray engine as the settings and the cluster describe it (None: not configured)."""
        return ray_view(self._cluster) if self._cluster is not None else None

    @cached_property
    def _cluster(self) -> RayExecutor | None:
        """The Ray engine's executor for views when this process runs no scheduler."""
        return ray_executor(self.settings)

    def close(self) -> None:
        """Leave the Ray cluster if a view connected this process to it (a scheduler's
        engines close with the scheduler)."""
        cluster = self.__dict__.pop("_cluster", None)
        if cluster is not None:
            cluster.close()

    def notify(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    def get_run(self, caller: Caller, run_id: int) -> Run:
        self.auth.authorize(caller, Action.TRAINING_READ)
        return self.metadata.get_run(run_id)

    def list_runs(
        self,
        caller: Caller,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        self.auth.authorize(caller, Action.TRAINING_READ)
        if not 1 <= limit <= MAX_RUNS_PAGE:
            raise InvalidInput(f"limit must be 1-{MAX_RUNS_PAGE}", {"field": "limit"})
        return self.metadata.list_runs(
            [status] if status is not None else None, pipeline=pipeline, limit=limit
        )

    def runs_page(
        self,
        caller: Caller,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> RunsPage:
        """Page `page` (from 1) of the runs, newest first, and how many there are in all."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        if not 1 <= per_page <= MAX_RUNS_PAGE:
            raise InvalidInput(f"per_page must be 1-{MAX_RUNS_PAGE}", {"field": "per_page"})
        if page < 1:
            raise InvalidInput("page must be 1 or more", {"field": "page"})
        found, total = self.metadata.page_runs(
            [status] if status is not None else None, pipeline, (page - 1) * per_page, per_page
        )
        return RunsPage(found, total)

    def pipeline_runs(self, caller: Caller) -> dict[str, PipelineRuns]:
        """Per pipeline name that has runs: their count and the newest one's status."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        summaries = self.metadata.pipeline_run_summaries()
        return {name: PipelineRuns(*summary) for name, summary in summaries.items()}

    def cancel(self, caller: Caller, run_id: int) -> Run:
        """A queued or pending run is cancelled at once; a running one is asked to stop.

        The scheduler may claim a queued run while this runs: the status check and
        the update are one compare-and-set, and a lost race is retried as a cancel
        of a running run.
        """
        run = self.metadata.get_run(run_id)
        self.auth.authorize_owned(caller, Action.RUNS_MANAGE, run.created_by, "runs")
        return self.cancel_as(caller.name, run)

    def cancel_as(self, actor: str, run: Run) -> Run:
        """`cancel` for `actor`, authorised already (a study pruning its own trial)."""
        run_id = run.id
        for _ in range(3):
            if run.status in FINAL or run.status is RunStatus.FINISHING:
                raise IllegalTransition(
                    f"run {run_id} is {run.status.value}; there is nothing to cancel",
                    {"run": run_id, "status": run.status.value},
                )
            audit = AuditDraft(actor, "runs.cancel", str(run_id), {"was": run.status.value})
            try:
                if run.status is RunStatus.RUNNING:
                    run = self.metadata.move_run(
                        run_id, [RunStatus.RUNNING], audit, cancel_requested=True
                    )
                else:
                    run = self.metadata.move_run(
                        run_id,
                        [RunStatus.QUEUED, RunStatus.PENDING],
                        audit,
                        event={
                            "status": RunStatus.CANCELLED.value,
                            "reason": "cancelled by request",
                        },
                        status=RunStatus.CANCELLED,
                        cancel_requested=True,
                        finished_at=_now(),
                    )
            except IllegalTransition:
                run = self.metadata.get_run(run_id)  # the scheduler moved it meanwhile
                continue
            self.notify()
            return run
        raise IllegalTransition(f"run {run_id} keeps changing status; try again", {"run": run_id})

    def resume(self, caller: Caller, run_id: int) -> Run:
        """Queue a failed or cancelled run again; it continues from its newest checkpoint."""
        run = self.metadata.get_run(run_id)
        self.auth.authorize_owned(caller, Action.RUNS_MANAGE, run.created_by, "runs")
        check_run_move(run_id, run.status, RunStatus.QUEUED)
        if run.status in ACTIVE:
            raise IllegalTransition(f"run {run_id} is already {run.status.value}")
        run = self.metadata.move_run(
            run_id,
            [RunStatus.FAILED, RunStatus.CANCELLED],
            AuditDraft(caller.name, "runs.resume", str(run_id), {"was": run.status.value}),
            event={"status": RunStatus.QUEUED.value, "reason": "resumed"},
            status=RunStatus.QUEUED,
            queued_at=_now(),
            finished_at=None,
            cancel_requested=False,
            error=None,
            error_code=None,
            max_attempts=run.attempts + self.settings.train_max_attempts,
        )
        self.notify()
        return run

    def events(self, caller: Caller, run_id: int, after: int = 0) -> list[RunEvent]:
        self.auth.authorize(caller, Action.TRAINING_READ)
        self.metadata.get_run(run_id)
        return self.metadata.run_events(run_id, after)

    def feed_position(self, caller: Caller, run_id: int) -> int:
        """The id of the run's newest event: a live view that has read the run follows
        its feed from there (`events(after=...)`) instead of replaying it whole."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        self.metadata.get_run(run_id)
        return self.metadata.last_run_event_id(run_id)

    def metrics(self, caller: Caller, run_id: int, name: str | None = None) -> list[MetricPoint]:
        self.auth.authorize(caller, Action.TRAINING_READ)
        self.metadata.get_run(run_id)
        return self.metadata.metric_points(run_id, name)

    def checkpoints(self, caller: Caller, run_id: int) -> list[Checkpoint]:
        self.auth.authorize(caller, Action.TRAINING_READ)
        self.metadata.get_run(run_id)
        return self.metadata.list_checkpoints(run_id)

    def alerts(self, caller: Caller, run_id: int) -> list[Alert]:
        self.auth.authorize(caller, Action.TRAINING_READ)
        self.metadata.get_run(run_id)
        return self.metadata.list_alerts(f"run:{run_id}")

    def logs(self, caller: Caller, run_id: int, offset: int = 0, limit: int = LOG_CHUNK) -> bytes:
        """The run's log from byte `offset` on, at most `limit` bytes ("" when none yet)."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        self.metadata.get_run(run_id)
        if offset < 0:
            raise InvalidInput("offset cannot be negative", {"field": "offset"})
        path = self.run_dir(run_id) / "logs.txt"
        try:
            with open(path, "rb") as source:
                source.seek(offset)
                return source.read(limit)
        except FileNotFoundError:
            return b""

    def log_tail(self, caller: Caller, run_id: int, limit: int = LOG_CHUNK) -> tuple[bytes, int]:
        """The end of the run's log, at most `limit` bytes starting at a line, and the
        offset just after it (where a live view goes on reading)."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        self.metadata.get_run(run_id)
        if limit < 1:
            raise InvalidInput("limit must be 1 or more", {"field": "limit"})
        path = self.run_dir(run_id) / "logs.txt"
        try:
            with open(path, "rb") as source:
                end = source.seek(0, os.SEEK_END)
                start = max(0, end - limit)
                source.seek(start)
                tail = source.read(end - start)
        except FileNotFoundError:
            return b"", 0
        if start > 0:  # begin at a whole line, not in the middle of one
            cut = tail.find(b"\n")
            tail = tail[cut + 1 :] if cut >= 0 else b""
        return tail, end

    def run_dir(self, run_id: int) -> Path:
        return self.settings.runs_dir / str(run_id)

    # -- what the scheduler calls back -------------------------------------------------

    def start_scheduler(self) -> Scheduler:
        """Run queued runs in this process until `stop_scheduler`: the server's
        lifespan and the local client's `scheduling()` both call this pair."""
        if self.scheduler is not None:
            raise IllegalTransition("the training scheduler is already running in this process")
        scheduler = self.build_scheduler()
        scheduler.start()
        return scheduler

    def stop_scheduler(self, grace_seconds: float = 5.0) -> None:
        """Stop the scheduler this process runs, if any: running attempts are asked to
        checkpoint and are queued again; finishing runs are finished first."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.stop(grace_seconds)

    def build_scheduler(self) -> Scheduler:
        """A scheduler over this service's stores, not started: tests tick it by hand."""
        from modelhub.training.executor import open_local

        s = self.settings
        executor = open_local(s)
        engines = {"local": TrainingEngine("local", executor, self.capacity())}
        cluster = ray_executor(s)
        if cluster is not None:
            engines["ray"] = ray_engine(cluster)
        engines |= plugin_engines(s, self.capacity())
        config = SchedulerConfig(
            capacity=self.capacity(),
            max_running=s.train_max_running,
            backoff_seconds=s.train_retry_backoff_seconds,
            aging_seconds=s.train_aging_seconds,
            stall_seconds=s.train_stall_seconds,
            lease_seconds=s.train_lease_seconds,
            heartbeat_seconds=s.train_heartbeat_seconds,
            resource_seconds=s.monitoring_resource_seconds,
        )
        scheduler = Scheduler(
            self.metadata,
            self.artifacts,
            engines,
            s.runs_dir,
            config,
            prepare=self.prepare,
            on_result=self.register_result,
            registered=self.registered_result,
        )
        for engine in engines.values():  # woken as soon as an attempt ends
            with contextlib.suppress(AttributeError):  # a plugin's executor may refuse it
                engine.executor.on_exit = scheduler.wake  # type: ignore[attr-defined]
        self.scheduler = scheduler
        return scheduler

    def prepare(self, run: Run, run_dir: Path) -> dict[str, Any]:
        """Put the run's inputs in its folder and describe the job for the worker."""
        spec = stored_spec(run.spec)
        data_dir = run_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        datasets = {}
        for pinned in run.inputs["datasets"]:
            target = data_dir / f"{pinned['name']}.{pinned['format']}"
            # Every attempt gets a fresh, verified copy: never a link into the store,
            # never a file an earlier attempt's code could have changed.
            self.artifacts.materialize(pinned["digest"], target)
            datasets[pinned["name"]] = target
        if len(datasets) > 1 and spec.trainer != "script":
            datasets = self._combine(run, datasets, data_dir)
        if spec.preprocessing:
            datasets = self._preprocess(run, spec, datasets, run_dir)
        base = None
        if "base_version" in run.inputs:
            base = run_dir / "base"
            if not base.exists():
                partial = run_dir / "base.partial"
                shutil.rmtree(partial, ignore_errors=True)
                self.registry.download(run.inputs["base_version"], partial)
                partial.rename(base)
        hyperparameters = dict(spec.hyperparameters) | {"epochs": spec.max_epochs}
        if spec.checkpoint.every_steps:
            hyperparameters["checkpoint_every"] = spec.checkpoint.every_steps
        ctx = LocalContext(
            run_dir=run_dir,
            hyperparameters=hyperparameters,
            datasets=datasets,
            base_model=base,
            seed=spec.seed,
            validation_split=spec.validation_split,
            device="cuda" if run.resources.gpus else "cpu",
            keep_checkpoints=spec.checkpoint.keep_last,
        )
        job: dict[str, Any] = ctx.job() | {"trainer": spec.trainer, "run_id": run.id}
        # What each worker declared: an executor on a cluster reserves it there.
        job["resources"] = {
            "cpus": spec.resources.cpus,
            "memory": spec.resources.memory,
            "gpus": spec.resources.gpus,
        }
        if run.inputs.get("profile") is not None:  # a short run that times its phases
            job["profile_steps"] = int(run.inputs["profile"]["budget_steps"])
        if spec.checkpoint.keep_best is not None:
            job["keep_best"] = spec.checkpoint.keep_best.model_dump()
        if spec.federated is not None:
            job |= federated_job(spec)
        if spec.distributed is not None and spec.distributed.workers > 1:
            # The executor runs the job as this many DDP workers (training/launcher.py).
            job["distributed"] = spec.distributed.model_dump()
        if spec.script is not None:
            name = PurePosixPath(spec.script.path).name
            script = run_dir / "script" / name
            self.artifacts.materialize(run.inputs["script_digest"], script)
            job["script"] = {"path": str(script), "entrypoint": spec.script.entrypoint}
            job["sandbox"] = self._sandbox()
        return job

    def _combine(self, run: Run, datasets: dict[str, Path], data_dir: Path) -> dict[str, Path]:
        """One table of every dataset's rows, for trainers that read a single dataset."""
        from modelhub.datasets.combine import combine
        from modelhub.domain.enums import DatasetFormat

        pinned = run.inputs["datasets"]
        name = "+".join(d["name"] for d in pinned)
        target = data_dir / f"combined.{pinned[0]['format']}"
        if not target.exists():
            sources = [(d["name"], datasets[d["name"]], DatasetFormat(d["format"])) for d in pinned]
            combine(sources, target)
        return {name: target}

    def _sandbox(self) -> dict[str, Any]:
        """How a script run confines itself (modelhub.training.sandbox), from the settings."""
        from modelhub.training.sandbox import job_section

        s = self.settings
        return job_section(
            s.home,
            s.resolved_artifacts,
            s.train_script_user,
            s.train_script_require_landlock,
            s.train_script_network,
        )

    def _preprocess(
        self, run: Run, spec: PipelineSpec, datasets: dict[str, Path], run_dir: Path
    ) -> dict[str, Path]:
        from modelhub.datasets.preprocess import preprocess
        from modelhub.domain.enums import DatasetFormat

        out_dir = run_dir / "data" / "preprocessed"
        out_dir.mkdir(parents=True, exist_ok=True)
        done, reports = {}, {}
        for name, source in datasets.items():
            kind = DatasetFormat(source.suffix.removeprefix("."))
            result = preprocess(source, kind, spec.preprocessing, out_dir)
            done[name] = result.path
            reports[name] = {
                "rows_in": result.rows_in,
                "rows_out": result.rows_out,
                "steps": [asdict(step) for step in result.steps],
            }
        if "preprocessing" not in run.inputs:
            self.metadata.record_progress(
                run.id,
                {"inputs": {**run.inputs, "preprocessing": reports}},
                events=[("preprocessing", reports)],
            )
        return done

    def register_result(self, run: Run, output_dir: Path, metrics: dict[str, float]) -> int | None:
        """The run's output becomes the next version of its result model, in development;
        a profiling run's registers nothing (its figures go to `on_profiled`).

        Only the run folder's own `output/` is registered: a script can write its run
        folder, and an output that is a link (or a result naming another folder)
        would otherwise register whatever it points at, the home included. A tuning
        trial registers nothing (None): its study registers the best trial's result.
        """
        if run.inputs.get("profile") is not None:
            if self._profiled_hook is not None:
                self._profiled_hook(run, metrics)
            return None
        if "trial" in run.inputs:
            return None
        return self._register(run, output_dir, metrics)

    def register_trial(self, run: Run) -> int:
        """Register a completed tuning trial's result, as a plain run's would have been
        (the metrics its trainer reported; the run's telemetry where it left none)."""
        from modelhub.training.scheduler.finishing import read_result

        reported = read_result(self.run_dir(run.id)).get("metrics")
        metrics = {k: float(v) for k, v in reported.items()} if reported else run.metrics
        return self._register(run, self.run_dir(run.id) / "output", metrics)

    def _register(self, run: Run, output_dir: Path, metrics: dict[str, float]) -> int:
        expected = self.run_dir(run.id) / "output"
        try:
            own = not output_dir.is_symlink() and os.path.samefile(output_dir, expected)
        except OSError:
            own = False
        if not own:
            raise InvalidInput(
                f"the run's output must be the folder {expected} itself, not {output_dir} "
                "or a link",
                {"output_dir": str(output_dir)},
            )
        spec = stored_spec(run.spec)
        finite = {k: v for k, v in metrics.items() if v == v and abs(v) != float("inf")}
        request = RegisterRequest(
            name=spec.result_model.name,
            type=spec.result_model.type.value if spec.result_model.type else None,
            description=spec.result_model.description,
            lineage=Lineage(
                source_run=str(run.id),
                pipeline=f"{run.pipeline}@{run.pipeline_version}",
                datasets=[d["digest"] for d in run.inputs["datasets"]],
                dataset_versions=[f"{d['name']}@{d['version']}" for d in run.inputs["datasets"]],
                base_version=run.inputs.get("base_version"),
                hyperparameters=dict(spec.hyperparameters) | {"max_epochs": spec.max_epochs},
                federated=federated_lineage(spec),
            ),
            metrics=finite,
            trust=spec.result_model.trust,
        )
        version = self.registry.register(request, output_dir, actor=run.created_by)
        for hook in self._registered_hooks:
            try:
                hook(version, run.created_by)
            except Exception:
                log.exception("after registering %s@%s", version.name, version.version)
        return version.version

    def registered_result(self, run: Run) -> int | None:
        """The version a run already registered, if any: a run taken over while
        finishing may have registered it before its server died."""
        try:
            versions = self.registry.versions(run.result_model)
        except NotFound:
            return None
        mine = [v.version for v in versions if v.lineage.source_run == str(run.id)]
        return mine[0] if mine else None


def check_base_trainer(spec: PipelineSpec, base: ModelVersion) -> None:
    """InvalidInput when the spec's trainer needs a base of one trainer's own output
    (its `base_trainer`: char_lm_preference starts from a char_lm) and `base` is not one."""
    traits = installed_trainers().traits.get(spec.trainer)
    needed = traits.base_trainer if traits is not None else None
    if needed is None:
        return
    if base.framework is not Framework.SAFETENSORS or base.architecture != needed:
        made_by = base.architecture or "of unknown architecture"
        raise InvalidInput(
            f"{base.name}@{base.version} is not a {needed} model (it is {made_by}, "
            f"{base.framework.value}); {spec.trainer} starts from a {needed} version",
            {"base_model": f"{base.name}@{base.version}", "needs": needed},
        )


def _now() -> datetime:
    return datetime.now(UTC)
