"""Hyperparameter tuning: an Optuna study whose trials are runs on the scheduler.

`tune` stores the pipeline (its spec checked like any other, `search:` included) and
an Optuna study named after it, in the project's own database through Optuna's RDB
storage. The modelhub record of the study (trials asked, parallel, deadline, status,
best trial and run, registered version) is the study's `modelhub` user attribute:
it is read and written with the study, in the same transactions, and needs no table
of ours. Each trial's run id is the trial's `run_id` user attribute, and each run
names its trial in `inputs.trial`.

The driver is a thread of this service, started and stopped with the scheduler. Each
pass, for every running study, it:

- reports each running trial's new intermediate values (the run's metric points,
  one per evaluation, numbered from 1) and asks the pruner; a pruned trial's run is
  cancelled and the trial told `pruned`;
- tells Optuna the outcome of trials whose runs ended (the run's final metric, or
  `fail` with the run's error);
- asks new trials while fewer than `parallel` run, the scheduler has a free slot, the
  study wants more and its deadline has not passed;
- once every trial has ended, registers the best trial's result as the next version
  of the pipeline's result model and completes the study.

Everything it knows is in the database, so after a crash (kill -9) the next start
carries on: trials whose runs finished meanwhile are told, running ones re-attached
(the scheduler resumes their runs from their checkpoints), and a trial whose run is
gone (or never started) fails as `lost` and is asked again.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import Action, Caller, parse_duration
from modelhub.domain.runs import ACTIVE, Pipeline, Run, RunStatus
from modelhub.domain.search import Search, SearchParam
from modelhub.domain.tuning import Study, StudyStatus, Trial, TrialState, TuneRequest
from modelhub.errors import Conflict, IllegalTransition, InvalidInput, ModelhubError, NotFound
from modelhub.services.auth import AuthService
from modelhub.services.training import TrainingService
from modelhub.settings import Settings
from modelhub.training.spec import parse_spec, stored_spec

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

ATTR = "modelhub"  # the study's user attribute holding our record


@dataclass
class _Pass:
    """One study as a driver pass sees it."""

    study: optuna.Study
    meta: dict[str, Any]
    search: Search


class TuningService:
    def __init__(self, settings: Settings, training: TrainingService, auth: AuthService) -> None:
        self.settings = settings
        self.training = training
        self.auth = auth
        self._lock = threading.RLock()  # one writer of studies at a time in this process
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._opening = threading.Lock()
        self._swept: set[str] = set()  # studies whose pruned trials' runs were checked
        self._storage: RDBStorage | None = None
        self._probe: Engine | None = None  # asks whether any study exists, Optuna unloaded

    @property
    def storage(self) -> RDBStorage:
        """Optuna's storage on the metadata store's database, opened on first use."""
        from modelhub.stores.metadata.optuna_storage import optuna_storage

        with self._opening:
            if self._storage is None:
                self._storage = optuna_storage(self.settings.resolved_database_url)
            return self._storage

    # -- the use cases -------------------------------------------------------------------

    def tune(self, caller: Caller, request: TuneRequest) -> Study:
        """Store the pipeline and start a study of `request.trials` trials over its search.

        InvalidInput for a spec without `search:` (or any other problem of the spec),
        a bad timeout; Conflict while a study of the same pipeline still runs. A
        finished study of the same pipeline is replaced (its runs stay).
        """
        import optuna

        self.auth.authorize(caller, Action.RUNS_START)
        timeout = parse_duration(request.timeout, "timeout") if request.timeout else None
        spec = parse_spec(request.spec)
        if spec.search is None:
            raise InvalidInput(
                "the pipeline spec has no search block: add search.params to tune it",
                {"errors": [{"field": "search", "message": "required to tune"}]},
            )
        self.training.authorize_start(caller, spec)
        with self._lock:
            earlier = self._summary(spec.name)
            if earlier is not None and earlier.get("status") == StudyStatus.RUNNING:
                raise Conflict(
                    f"a study of {spec.name} is still running: see `modelhub tune status "
                    f"{spec.name}`",
                    {"study": spec.name},
                )
            files = {path: text.encode() for path, text in request.files.items()}
            pipeline = self.training.create_pipeline(caller, request.spec, files).pipeline
            if earlier is not None:
                optuna.delete_study(study_name=spec.name, storage=self.storage)
            study = optuna.create_study(
                study_name=spec.name, storage=self.storage, direction=spec.search.goal
            )
            started = _now()
            meta = {
                "key": uuid.uuid4().hex,
                "pipeline_version": pipeline.version,
                "trials": request.trials,
                "parallel": request.parallel,
                "timeout_seconds": timeout.total_seconds() if timeout else None,
                "created_by": caller.name,
                "started_at": started.isoformat(),
                "deadline": (started + timeout).isoformat() if timeout else None,
                "status": StudyStatus.RUNNING.value,
            }
            study.set_user_attr(ATTR, meta)
        self._wake.set()
        return self._record(study, meta, spec.search, importance=False)

    def status(self, caller: Caller, name: str) -> Study:
        """The study of pipeline `name`: its trials, the best so far, parameter importance."""
        self.auth.authorize(caller, Action.TRAINING_READ)
        current = self._load(name)
        return self._record(current.study, current.meta, current.search, importance=True)

    def chart(self, caller: Caller, name: str) -> str:
        """The study's optimisation history and parameter importance, as SVG text."""
        from modelhub.training.tune_chart import study_chart

        return study_chart(self.status(caller, name))

    def resume(self, caller: Caller, name: str) -> Study:
        """Run a failed study again until it has its trials (a running one is left as it
        is: the driver already carries it). NotFound when no study has that name;
        IllegalTransition for a completed one."""
        self.auth.authorize(caller, Action.RUNS_START)
        with self._lock:
            current = self._load(name)
            meta = current.meta
            if meta["status"] == StudyStatus.COMPLETED:
                raise IllegalTransition(
                    f"the study of {name} is completed; tune the pipeline again for a new one",
                    {"study": name, "status": meta["status"]},
                )
            self.auth.authorize_owned(caller, Action.RUNS_MANAGE, meta["created_by"], "runs")
            if meta["status"] == StudyStatus.FAILED:
                started = _now()
                timeout = meta.get("timeout_seconds")
                meta |= {
                    "status": StudyStatus.RUNNING.value,
                    "reason": None,
                    "finished_at": None,
                    "deadline": (started + timedelta(seconds=timeout)).isoformat()
                    if timeout
                    else None,
                }
                current.study.set_user_attr(ATTR, meta)
        self._wake.set()
        return self._record(current.study, meta, current.search, importance=False)

    # -- the driver thread ---------------------------------------------------------------

    def start(self) -> None:
        """Drive running studies on a thread until `stop` (the server's lifespan calls it
        after starting the scheduler; `LocalClient.scheduling()` too)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="tuning", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(30)

    def close(self) -> None:
        """Stop the driver and close the storage's database connections."""
        self.stop()
        with self._opening:
            storage, self._storage = self._storage, None
        if storage is not None:
            storage.engine.dispose()
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.dispose()

    def _studies_exist(self) -> bool:
        from modelhub.stores.metadata.optuna_storage import has_studies, studies_table_probe

        if self._probe is None:
            self._probe = studies_table_probe(self.settings.resolved_database_url)
        return has_studies(self._probe)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.drive()
            except Exception:  # the database away: the next pass tries again
                log.exception("tuning pass failed")
            self._wake.wait(self.settings.tune_poll_seconds)
            self._wake.clear()

    def drive(self) -> int:
        """One pass over every running study; how many were running."""
        if self._storage is None and not self._studies_exist():
            return 0  # never tuned here: no Optuna import, no tables made at start
        import optuna

        with self._lock:
            summaries = optuna.get_all_study_summaries(self.storage, include_best_trial=False)
            running = [
                s.study_name
                for s in summaries
                if s.user_attrs.get(ATTR, {}).get("status") == StudyStatus.RUNNING
            ]
            for name in running:
                if self._stop.is_set():
                    break
                try:
                    self._drive_one(self._load(name))
                except Exception:
                    log.exception("driving the study of %s failed; trying again", name)
            return len(running)

    def _drive_one(self, current: _Pass) -> None:
        from optuna.trial import TrialState as OptunaState

        study, meta = current.study, current.meta
        pipeline = self.training.metadata.get_pipeline(study.study_name)
        if pipeline.version != meta["pipeline_version"]:
            self._end(
                current,
                StudyStatus.FAILED,
                f"the pipeline changed to version {pipeline.version} during the study",
            )
            return
        if study.study_name not in self._swept:
            self._cancel_pruned(current)
            self._swept.add(study.study_name)
        for trial in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
            self._follow(current, trial)
        trials = study.get_trials(deepcopy=False)
        counted = [t for t in trials if not t.user_attrs.get("lost")]
        in_flight = sum(1 for t in trials if t.state == OptunaState.RUNNING)
        deadline = meta.get("deadline")
        open_ = deadline is None or _now() < datetime.fromisoformat(deadline)
        while (
            open_
            and len(counted) < meta["trials"]
            and in_flight < meta["parallel"]
            and self.training.active_runs() < self.settings.train_max_running
        ):
            if not self._ask(current, pipeline):
                return
            counted.append(study.trials[-1])
            in_flight += 1
        if in_flight == 0 and (not open_ or len(counted) >= meta["trials"]):
            self._finish(current)

    def _ask(self, current: _Pass, pipeline: Pipeline) -> bool:
        import optuna

        study, meta = current.study, current.meta
        # Seeded by trial number: after a restart the next trial samples what it would have.
        study.sampler = optuna.samplers.TPESampler(seed=current.search.seed + len(study.trials))
        trial = study.ask(distributions(current.search))
        mark = {"study": study.study_name, "key": meta["key"], "number": trial.number}
        try:
            run = self.training.start_trial(pipeline, dict(trial.params), mark)
        except ModelhubError as exc:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._end(current, StudyStatus.FAILED, f"trial {trial.number} could not start: {exc}")
            return False
        trial.set_user_attr("run_id", run.id)
        return True

    def _follow(self, current: _Pass, trial: FrozenTrial) -> None:
        """Report a running trial's new points, prune it, or tell how its run ended."""
        import optuna

        study = current.study
        run = self._run_of(current, trial)
        if run is None:
            self._fail(study, trial, "lost: its run is gone; asked again", lost=True)
            return
        metric = current.search.metric
        live = optuna.trial.Trial(study, trial._trial_id)
        for evaluation, value in enumerate(self._evaluations(run, metric), start=1):
            if evaluation in trial.intermediate_values or not math.isfinite(value):
                continue
            live.report(value, evaluation)
            if run.status in ACTIVE and live.should_prune():
                live.set_user_attr("pruning", evaluation)
                if self._cancel(run, current.meta["created_by"]):
                    study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
                    return
                break  # it finished meanwhile: it is told below once it is final
        if run.status is RunStatus.COMPLETED:
            final = run.metrics.get(metric)
            if final is None or not math.isfinite(final):
                self._fail(study, trial, f"its run {run.id} reported no finite {metric}")
            else:
                study.tell(trial.number, final)
        elif run.status is RunStatus.CANCELLED and "pruning" in trial.user_attrs:
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
        elif run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
            self._fail(study, trial, f"run {run.id} {run.status.value}: {run.error or ''}".strip())

    def _cancel_pruned(self, current: _Pass) -> None:
        """Cancel again the runs of pruned trials that still train: a run whose cancel
        was asked just before a crash is queued again by the next scheduler, and run."""
        from optuna.trial import TrialState as OptunaState

        for trial in current.study.get_trials(deepcopy=False, states=(OptunaState.PRUNED,)):
            run = self._run_of(current, trial)
            if run is not None and run.status in ACTIVE and not run.cancel_requested:
                self._cancel(run, current.meta["created_by"])

    def _run_of(self, current: _Pass, trial: FrozenTrial) -> Run | None:
        run_id = trial.user_attrs.get("run_id")
        if run_id is None:  # stopped between asking and recording: find the run, if any
            mark = {"study": current.study.study_name, "key": current.meta["key"]}
            mark["number"] = trial.number
            runs = self.training.metadata.list_runs(pipeline=current.study.study_name, limit=200)
            found = [r for r in runs if r.inputs.get("trial") == mark]
            if not found:
                return None
            trial_ref = found[0]
            self.storage.set_trial_user_attr(trial._trial_id, "run_id", trial_ref.id)
            return trial_ref
        try:
            return self.training.metadata.get_run(int(run_id))
        except NotFound:
            return None

    def _evaluations(self, run: Run, metric: str) -> list[float]:
        """The run's `metric` values in step order, one per step (a resumed attempt that
        logged a step again replaces the earlier value)."""
        by_step: dict[int, float] = {}
        for point in self.training.metadata.metric_points(run.id, metric):
            by_step[point.step] = point.value
        return [by_step[step] for step in sorted(by_step)]

    def _cancel(self, run: Run, actor: str) -> bool:
        try:
            self.training.cancel_as(actor, run)
        except IllegalTransition:
            return False
        return True

    def _fail(
        self, study: optuna.Study, trial: FrozenTrial, reason: str, lost: bool = False
    ) -> None:
        import optuna

        self.storage.set_trial_user_attr(trial._trial_id, "reason", reason[:500])
        if lost:
            self.storage.set_trial_user_attr(trial._trial_id, "lost", True)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)

    def _finish(self, current: _Pass) -> None:
        from optuna.trial import TrialState as OptunaState

        study = current.study
        complete = study.get_trials(deepcopy=False, states=(OptunaState.COMPLETE,))
        if not complete:
            self._end(current, StudyStatus.FAILED, "no trial completed")
            return
        best = study.best_trial
        try:
            run = self.training.metadata.get_run(int(best.user_attrs["run_id"]))
            version = self.training.registered_result(run) or self.training.register_trial(run)
        except (ModelhubError, KeyError) as exc:
            reason = exc.message if isinstance(exc, ModelhubError) else "no run"
            self._end(current, StudyStatus.FAILED, f"registering trial {best.number}: {reason}")
            return
        current.meta |= {"best_trial": best.number, "best_run": run.id}
        current.meta["registered_version"] = version
        self._end(current, StudyStatus.COMPLETED, None)

    def _end(self, current: _Pass, status: StudyStatus, reason: str | None) -> None:
        current.meta |= {
            "status": status.value,
            "reason": reason,
            "finished_at": _now().isoformat(),
        }
        current.study.set_user_attr(ATTR, current.meta)
        if reason:
            log.warning("study %s %s: %s", current.study.study_name, status.value, reason)

    # -- reading studies -----------------------------------------------------------------

    def _summary(self, name: str) -> dict[str, Any] | None:
        import optuna

        for summary in optuna.get_all_study_summaries(self.storage, include_best_trial=False):
            if summary.study_name == name:
                return dict(summary.user_attrs.get(ATTR, {}))
        return None

    def _load(self, name: str) -> _Pass:
        import optuna

        try:
            study = optuna.load_study(
                study_name=name, storage=self.storage, sampler=optuna.samplers.RandomSampler()
            )
        except KeyError:
            raise NotFound(f"no tuning study named {name!r}", {"study": name}) from None
        meta = dict(study.user_attrs.get(ATTR, {}))
        if not meta:
            raise NotFound(f"no tuning study named {name!r}", {"study": name})
        spec = stored_spec(self.training.metadata.get_pipeline(name).spec)
        if spec.search is None:
            raise NotFound(f"pipeline {name} no longer has a search block", {"study": name})
        study.pruner = pruner(spec.search)
        return _Pass(study, meta, spec.search)

    def _record(
        self, study: optuna.Study, meta: dict[str, Any], search: Search, importance: bool
    ) -> Study:
        trials = [_trial(t) for t in study.get_trials(deepcopy=False)]
        best = _best(study)
        return Study(
            name=study.study_name,
            pipeline_version=meta["pipeline_version"],
            status=StudyStatus(meta["status"]),
            metric=search.metric,
            direction=search.goal,
            pruner=search.pruner,
            trials=meta["trials"],
            parallel=meta["parallel"],
            timeout_seconds=meta.get("timeout_seconds"),
            created_by=meta["created_by"],
            started_at=datetime.fromisoformat(meta["started_at"]),
            deadline=_when(meta.get("deadline")),
            finished_at=_when(meta.get("finished_at")),
            reason=meta.get("reason"),
            best_trial=best.number if best else None,
            best_value=best.value if best else None,
            best_run=best.user_attrs.get("run_id") if best else None,
            best_params=dict(best.params) if best else {},
            registered_version=meta.get("registered_version"),
            trial_list=trials,
            importance=_importance(study) if importance else {},
        )


def distributions(search: Search) -> dict[str, BaseDistribution]:
    """Optuna's distribution for each searched parameter."""
    return {name: _distribution(param) for name, param in search.params.items()}


def _distribution(param: SearchParam) -> BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.type == "categorical":
        return CategoricalDistribution(list(param.choices or []))
    assert param.low is not None and param.high is not None
    if param.type == "int":
        step = int(param.step or 1)
        return IntDistribution(int(param.low), int(param.high), log=param.log, step=step)
    return FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def pruner(search: Search) -> optuna.pruners.BasePruner:
    import optuna

    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


_STATES = {
    "RUNNING": TrialState.RUNNING,
    "WAITING": TrialState.RUNNING,
    "COMPLETE": TrialState.COMPLETE,
    "PRUNED": TrialState.PRUNED,
    "FAIL": TrialState.FAIL,
}


def _trial(trial: FrozenTrial) -> Trial:
    state = _STATES[trial.state.name]
    value = trial.value
    if state is TrialState.PRUNED and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    run_id = trial.user_attrs.get("run_id")
    reason = trial.user_attrs.get("reason")
    if reason is None and state is TrialState.PRUNED and "pruning" in trial.user_attrs:
        reason = f"pruned at evaluation {trial.user_attrs['pruning']}"
    return Trial(
        number=trial.number,
        state=state,
        params=dict(trial.params),
        value=value,
        run_id=int(run_id) if run_id is not None else None,
        steps=len(trial.intermediate_values),
        reason=reason,
        asked_at=trial.datetime_start.astimezone(UTC) if trial.datetime_start else None,
    )


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def _importance(study: optuna.Study) -> dict[str, float]:
    import optuna

    try:
        with warnings.catch_warnings():  # "too few trials": the chart says so itself
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ImportError):
        return {}  # fewer than two complete trials, or nothing varied
    return {name: float(share) for name, share in found.items()}


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _now() -> datetime:
    return datetime.now(UTC)
