"""One learning cycle of a persona, as a small state machine the server's loop advances.

    begin:    data (dataset versions with digests) -> train (a fine_tuning run of the
              text classifier from the serving version; a preference run for the chat
              model when there are enough rated pairs)             status: training
    advance:  run finished -> evaluate (candidate against serving on the held-out
              interactions: accuracy gain >= margin and an exact McNemar test,
              scipy.stats.binomtest on the discordant pairs, p < alpha)
              -> governance (the registry's gate for the policy's stage, and the move)
              -> canary (a rollout with automated analysis on the deployment that
              serves the model)                                    status: canary
              -> the canary analysis promotes or rolls back -> the alias follows:
              promoted | rolled_back.  Not better, or refused: rejected.

Every step appends a `CycleStep` to the cycle's record (`personas history`) and each
change of status is audited. The cycle acts as `system`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import Caller, Role
from modelhub.domain.deployments import DeploymentStatus
from modelhub.domain.enums import Stage
from modelhub.domain.monitoring import window_since
from modelhub.domain.personas import (
    Cycle,
    CycleStatus,
    CycleStep,
    Evaluation,
    Interaction,
    LearnPlan,
    Persona,
    TriggerState,
)
from modelhub.domain.runs import FINAL, RunStatus
from modelhub.errors import Conflict, ModelhubError
from modelhub.services.persona_data import classifier_rows, jsonl, preference_rows
from modelhub.stores.metadata.base import AuditDraft

if TYPE_CHECKING:
    from modelhub.services.datasets import DatasetService
    from modelhub.services.deployments import DeploymentService
    from modelhub.services.governance.scoring import VersionScorer
    from modelhub.services.monitoring.canary import CanaryService
    from modelhub.services.monitoring.drift import DriftService
    from modelhub.services.registry import RegistryService
    from modelhub.services.training import TrainingService
    from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger("modelhub.personas")

SYSTEM = Caller(name="system", role=Role.ADMIN)
CHAT_TRAINER = "char_lm_preference"
# A cycle recorded without its run this long ago was cut off (a crash) while starting.
STARTING_GRACE = timedelta(minutes=5)


def _now() -> datetime:
    return datetime.now(UTC)


def _step(cycle: Cycle, step: str, outcome: str, **details: Any) -> Cycle:
    entry = CycleStep(step=step, outcome=outcome, at=_now(), details=details)
    return cycle.model_copy(update={"steps": [*cycle.steps, entry]})


def _finish(cycle: Cycle, status: CycleStatus, decision: str) -> Cycle:
    cycle = _step(cycle, "decision", status.value, reason=decision)
    return cycle.model_copy(update={"status": status, "decision": decision, "finished_at": _now()})


def mcnemar(serving: list[bool], candidate: list[bool]) -> tuple[int, int, float]:
    """(candidate-only right, serving-only right, one-sided exact p-value) of the
    discordant pairs: is the candidate right more often than chance would make it?"""
    from scipy.stats import binomtest

    wins = sum(1 for s, c in zip(serving, candidate, strict=True) if c and not s)
    losses = sum(1 for s, c in zip(serving, candidate, strict=True) if s and not c)
    if wins + losses == 0:
        return wins, losses, 1.0
    return wins, losses, float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)


class LearningCycles:
    def __init__(
        self,
        metadata: MetadataStore,
        registry: RegistryService,
        datasets: DatasetService,
        training: TrainingService,
        deployments: DeploymentService,
        canary: CanaryService,
        drift: DriftService,
        scorer: VersionScorer,
        scratch: Path,
    ) -> None:
        self.metadata = metadata
        self.registry = registry
        self.datasets = datasets
        self.training = training
        self.deployments = deployments
        self.canary = canary
        self.drift = drift
        self.scorer = scorer
        self.scratch = scratch

    # -- triggers ------------------------------------------------------------------------

    def serving_version(self, persona: Persona) -> int | None:
        return self.registry.aliases(persona.model).get(persona.alias)

    def triggers(self, persona: Persona, check_drift: bool = True) -> TriggerState:
        cycles = self.metadata.list_cycles(persona.name)
        since = cycles[-1].watermark if cycles else 0
        counts = self.metadata.interaction_counts(persona.name, since)
        policy = persona.policy.triggers
        fired: str | None = None
        if policy.new_labels is not None and counts.new_labelled >= policy.new_labels:
            fired = "new_labels"
        due: bool | None = None
        every = policy.schedule_every
        if every is not None:
            last = cycles[-1].started_at if cycles else persona.created_at
            due = _now() - last >= every
            if due and fired is None and counts.new_labelled > 0:
                fired = "schedule"
        drifted: bool | None = None
        if policy.drift and check_drift:
            drifted = self._drifted(persona)
            if drifted and fired is None and counts.new_labelled > 0:
                fired = "drift"
        return TriggerState(
            new_labels=counts.new_labelled,
            needed=policy.new_labels,
            drift=drifted,
            schedule_due=due,
            fired=fired,
        )

    def _drifted(self, persona: Persona) -> bool | None:
        version = self.serving_version(persona)
        if version is None:
            return None
        try:
            window = window_since(persona.policy.drift_since)
            return self.drift.check(persona.model, version, window).drifted
        except ModelhubError:
            return None  # no reference, or no live data yet: no drift to speak of

    # -- planning and starting -------------------------------------------------------------

    def _data(self, persona: Persona) -> tuple[int, list[Interaction]]:
        everything = self.metadata.list_interactions(persona.name)
        watermark = everything[-1].seq if everything else 0
        return watermark, everything

    def plan(self, persona: Persona) -> LearnPlan:
        _, everything = self._data(persona)
        train = classifier_rows([i for i in everything if not i.held_out], persona.model)
        heldout = classifier_rows([i for i in everything if i.held_out], persona.model)
        pairs = preference_rows(everything, persona.chat_model) if persona.chat_model else []
        serving = self.serving_version(persona)
        state = self.triggers(persona)
        classes = sorted({row["label"] for row in train})
        problem = self._problem(persona, serving, train, heldout)
        would = (
            f"skip: {problem}"
            if problem
            else f"fine-tune {persona.model}@{serving} on {len(train)} rows, evaluate on "
            f"{len(heldout)} held-out rows"
        )
        return LearnPlan(
            persona=persona.name,
            triggers=state,
            train_rows=len(train),
            heldout_rows=len(heldout),
            classes=classes,
            chat_pairs=len(pairs),
            serving=f"{persona.model}@{serving}" if serving is not None else None,
            would=would,
        )

    @staticmethod
    def _problem(
        persona: Persona,
        serving: int | None,
        train: list[dict[str, str]],
        heldout: list[dict[str, str]],
    ) -> str | None:
        if serving is None:
            return f"alias {persona.alias!r} of {persona.model} points at no version"
        if len({row["label"] for row in train}) < 2:
            return "the labelled interactions hold fewer than 2 intents"
        if len(heldout) < persona.policy.min_heldout:
            return (
                f"{len(heldout)} held-out labelled interactions, the policy needs "
                f"{persona.policy.min_heldout}"
            )
        return None

    def begin(self, persona: Persona, trigger: str, actor: str) -> Cycle:
        """Record a new cycle and start its training; Conflict when one is open."""
        watermark, everything = self._data(persona)
        serving = self.serving_version(persona)
        cycle = Cycle(
            id=0,
            persona=persona.name,
            number=0,
            trigger=trigger,
            status=CycleStatus.TRAINING,
            serving_version=serving,
            watermark=watermark,
            started_at=_now(),
        )
        cycle = self.metadata.create_cycle(
            cycle,
            AuditDraft(actor, "personas.cycle", persona.name, {"trigger": trigger}),
        )
        try:
            return self._start(persona, cycle, serving, everything)
        except ModelhubError as exc:
            return self._save(_finish(cycle, CycleStatus.FAILED, f"failed: {exc.message}"))

    def _start(
        self, persona: Persona, cycle: Cycle, serving: int | None, everything: list[Interaction]
    ) -> Cycle:
        train = classifier_rows([i for i in everything if not i.held_out], persona.model)
        heldout = classifier_rows([i for i in everything if i.held_out], persona.model)
        problem = self._problem(persona, serving, train, heldout)
        if problem is not None:
            cycle = _step(cycle, "data", "insufficient", train=len(train), heldout=len(heldout))
            return self._save(_finish(cycle, CycleStatus.SKIPPED, f"skipped: {problem}"))
        data = self._dataset(f"persona-{persona.name}-train", train)
        held = self._dataset(f"persona-{persona.name}-heldout", heldout)
        cycle = cycle.model_copy(update={"dataset": data, "heldout_dataset": held})
        cycle = _step(
            cycle,
            "data",
            "built",
            dataset=data,
            heldout=held,
            train_rows=len(train),
            heldout_rows=len(heldout),
            classes=sorted({row["label"] for row in train}),
        )
        if persona.chat_model:
            cycle = self._chat(persona, cycle, everything)
        policy = persona.policy
        name, version = data.split("@")
        spec = (
            f"name: persona-{persona.name}-intents\ntype: fine_tuning\ntrainer: text_classifier\n"
            f"base_model: {persona.model}@{serving}\n"
            f"datasets: [{{name: {name}, version: {version}}}]\n"
            f"max_epochs: {policy.epochs}\nseed: {policy.seed}\n"
            f"hyperparameters: {json.dumps(policy.hyperparameters)}\n"
            f"result_model: {{name: {persona.model}}}\n"
        )
        self.training.create_pipeline(SYSTEM, spec)
        run = self.training.start(SYSTEM, f"persona-{persona.name}-intents")
        cycle = _step(cycle, "train", "started", run=run.id, base=f"{persona.model}@{serving}")
        return self._save(cycle.model_copy(update={"run_id": run.id}))

    def _dataset(self, name: str, rows: list[dict[str, str]]) -> str:
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.scratch) as folder:
            path = Path(folder) / f"{name}.jsonl"
            path.write_bytes(jsonl(rows))
            dataset = self.datasets.register(SYSTEM, path, name, "jsonl")
        return f"{dataset.name}@{dataset.version}"

    def _chat(self, persona: Persona, cycle: Cycle, everything: list[Interaction]) -> Cycle:
        """The chat model's preference run, when enough rated pairs exist; its failure
        is recorded and never stops the intent loop."""
        assert persona.chat_model is not None
        pairs = preference_rows(everything, persona.chat_model)
        if len(pairs) < persona.policy.chat_min_pairs:
            return _step(
                cycle, "chat", "waiting", pairs=len(pairs), needed=persona.policy.chat_min_pairs
            )
        try:
            data = self._dataset(f"persona-{persona.name}-pairs", pairs)
            name, version = data.split("@")
            spec = chat_spec(persona, name, int(version))
            self.training.create_pipeline(SYSTEM, spec)
            run = self.training.start(SYSTEM, f"persona-{persona.name}-chat")
        except ModelhubError as exc:
            return _step(cycle, "chat", "failed", pairs=len(pairs), error=exc.message)
        return _step(cycle, "chat", "started", pairs=len(pairs), dataset=data, run=run.id)

    # -- advancing -------------------------------------------------------------------------

    def advance(self, persona: Persona, cycle: Cycle) -> Cycle:
        """Move an open cycle on as far as it can go now."""
        try:
            if cycle.status is CycleStatus.TRAINING:
                return self._after_training(persona, cycle)
            if cycle.status is CycleStatus.CANARY:
                return self._after_canary(persona, cycle)
        except Conflict:
            raise  # another server moved this cycle on: its outcome stands
        except ModelhubError as exc:
            return self._save(_finish(cycle, CycleStatus.FAILED, f"failed: {exc.message}"))
        return cycle

    def _after_training(self, persona: Persona, cycle: Cycle) -> Cycle:
        if cycle.run_id is None:  # `begin` is starting it on another thread
            if _now() - cycle.started_at < STARTING_GRACE:
                return cycle
            return self._save(_finish(cycle, CycleStatus.FAILED, "failed: its run never started"))
        run = self.training.get_run(SYSTEM, cycle.run_id)
        if run.status not in FINAL:
            return cycle
        if run.status is not RunStatus.COMPLETED or run.result_version is None:
            cycle = _step(cycle, "train", run.status.value, run=run.id, error=run.error)
            return self._save(
                _finish(cycle, CycleStatus.FAILED, f"training {run.status.value}: {run.error}")
            )
        candidate = run.result_version
        cycle = cycle.model_copy(update={"candidate_version": candidate})
        cycle = _step(cycle, "train", "completed", run=run.id, candidate=candidate)
        evaluation = self._evaluate(persona, cycle)
        cycle = cycle.model_copy(update={"evaluation": evaluation})
        cycle = _step(cycle, "evaluate", "better" if evaluation.better else "not better",
                      **evaluation.model_dump(mode="json"))  # fmt: skip
        if not evaluation.better:
            reason = (
                f"rejected: held-out accuracy {evaluation.candidate_accuracy:.3f} against "
                f"{evaluation.serving_accuracy:.3f} (p={evaluation.p_value:.3g}); the policy "
                f"needs +{evaluation.margin:g} with p < {evaluation.alpha:g}"
            )
            return self._save(_finish(cycle, CycleStatus.REJECTED, reason), persona)
        return self._govern_and_roll_out(persona, cycle, candidate)

    def _evaluate(self, persona: Persona, cycle: Cycle) -> Evaluation:
        import pandas as pd

        held = [
            i
            for i in self.metadata.list_interactions(persona.name, upto=cycle.watermark)
            if i.held_out
        ]
        rows = classifier_rows(held, persona.model)
        frame = pd.DataFrame({"text": [row["text"] for row in rows]})
        truth = [row["label"] for row in rows]
        answers = {}
        for label, version in (
            ("serving", cycle.serving_version),
            ("candidate", cycle.candidate_version),
        ):
            loaded_version = self.registry.get(f"{persona.model}@{version}")
            with self.scorer.loaded(loaded_version) as loaded:
                inputs = loaded.inputs_for(frame)
                predicted = loaded.predict(loaded.matrix(frame, inputs), inputs).labels.tolist()
            answers[label] = [str(p) == t for p, t in zip(predicted, truth, strict=True)]
        wins, losses, p_value = mcnemar(answers["serving"], answers["candidate"])
        n = len(truth)
        serving = sum(answers["serving"]) / n
        candidate = sum(answers["candidate"]) / n
        policy = persona.policy
        return Evaluation(
            heldout=n,
            serving_accuracy=serving,
            candidate_accuracy=candidate,
            candidate_only_right=wins,
            serving_only_right=losses,
            p_value=p_value,
            margin=policy.margin,
            alpha=policy.alpha,
            better=candidate - serving >= policy.margin and p_value < policy.alpha,
        )

    def _govern_and_roll_out(self, persona: Persona, cycle: Cycle, candidate: int) -> Cycle:
        stage = Stage(persona.policy.governance_stage)
        version = self.registry.get(f"{persona.model}@{candidate}")
        missing = self.registry.gate_missing(version, stage)
        if missing:
            cycle = _step(cycle, "governance", "refused", stage=stage.value, missing=missing)
            reason = f"rejected: governance for {stage.value} still needs " + "; ".join(missing)
            return self._save(_finish(cycle, CycleStatus.REJECTED, reason), persona)
        try:
            self.registry.set_stage(persona.model, candidate, stage.value, SYSTEM.name)
        except ModelhubError as exc:
            cycle = _step(cycle, "governance", "refused", stage=stage.value, error=exc.message)
            return self._save(
                _finish(cycle, CycleStatus.REJECTED, f"rejected: {exc.message}"), persona
            )
        cycle = _step(cycle, "governance", "passed", stage=stage.value)
        deployment = self._deployment(persona, cycle.serving_version)
        if deployment is None:
            cycle = _step(cycle, "canary", "skipped", reason="no running deployment serves it")
            return self._promote(persona, cycle, candidate, "promoted without a canary")
        from modelhub.services.deployments import RolloutRequest

        policy = persona.policy.canary
        self.deployments.update(
            SYSTEM,
            RolloutRequest(
                deployment=deployment,
                version=str(candidate),
                canary=policy.percent,
                analysis="auto",  # type: ignore[arg-type]  # parsed in __post_init__
                min_requests=policy.min_requests,
                max_duration=policy.max_duration,
            ),
        )
        cycle = _step(cycle, "canary", "started", deployment=deployment, percent=policy.percent,
                      min_requests=policy.min_requests)  # fmt: skip
        cycle = cycle.model_copy(update={"status": CycleStatus.CANARY, "deployment": deployment})
        return self._save(cycle, persona)

    def _deployment(self, persona: Persona, serving: int | None) -> str | None:
        named = persona.policy.canary.deployment
        for deployment in self.deployments.list_all(SYSTEM, model=persona.model):
            if named is not None and deployment.name != named:
                continue
            if deployment.status is DeploymentStatus.RUNNING and (
                named is not None or deployment.primary_version == serving
            ):
                return deployment.name
        return None

    def _after_canary(self, persona: Persona, cycle: Cycle) -> Cycle:
        name, candidate = cycle.deployment, cycle.candidate_version
        assert name is not None and candidate is not None
        deployment = self.deployments.get(SYSTEM, name)
        if deployment.status in (DeploymentStatus.FAILED, DeploymentStatus.STOPPED):
            cycle = _step(cycle, "canary", deployment.status.value)
            return self._save(
                _finish(cycle, CycleStatus.FAILED, f"deployment {deployment.status.value}"),
                persona,
            )
        if deployment.status is not DeploymentStatus.RUNNING or len(deployment.traffic) != 1:
            return cycle
        decisions = self.canary.decisions(SYSTEM, name, limit=1)
        reason = decisions[0].reason if decisions else "decided by a person"
        analysis = decisions[0].outcome.value if decisions else "manual"
        if deployment.primary_version == candidate:
            cycle = _step(cycle, "canary", "promote", analysis=analysis, reason=reason)
            return self._promote(persona, cycle, candidate, f"promoted: {reason}")
        cycle = _step(cycle, "canary", "rollback", analysis=analysis, reason=reason)
        return self._save(
            _finish(cycle, CycleStatus.ROLLED_BACK, f"rolled back: {reason}"), persona
        )

    def _promote(self, persona: Persona, cycle: Cycle, candidate: int, reason: str) -> Cycle:
        self.registry.set_alias(persona.model, persona.alias, candidate, SYSTEM.name)
        return self._save(_finish(cycle, CycleStatus.PROMOTED, reason), persona)

    def _save(self, cycle: Cycle, persona: Persona | None = None) -> Cycle:
        audit = AuditDraft(
            SYSTEM.name,
            f"personas.cycle_{cycle.status.value}",
            cycle.persona,
            {"cycle": cycle.number, "candidate": cycle.candidate_version},
        )
        return self.metadata.update_cycle(cycle, audit)


def chat_spec(persona: Persona, dataset: str, version: int) -> str:
    """The chat model's preference run: rows {"prompt", "chosen", "rejected"}."""
    assert persona.chat_model is not None
    return (
        f"name: persona-{persona.name}-chat\ntype: reinforcement_learning\n"
        f"trainer: {CHAT_TRAINER}\nbase_model: {persona.chat_model}@latest\n"
        f"datasets: [{{name: {dataset}, version: {version}}}]\n"
        f"max_epochs: {persona.policy.epochs}\nseed: {persona.policy.seed}\n"
        f"result_model: {{name: {persona.chat_model}}}\n"
    )
