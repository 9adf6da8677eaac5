"""One learning cycle of a persona, as a small state machine the server's loop advances.

    begin:    data (dataset versions with digests) -> train (a fine_tuning run of the
              text classifier from the serving version; a preference run for the chat
              model when there are enough rated pairs)             status: training
    advance:  run finished -> evaluate (candidate against serving: no regression on
              the trusted held-out rows, those the serving version was promoted on,
              and on every held-out row an accuracy gain >= margin and an exact
              McNemar test, scipy.stats.binomtest on the discordant pairs, p < alpha)
              -> governance (the registry's gate for the policy's stage, and the move)
              -> canary (a rollout with automated analysis on the deployment that
              serves the model)                                    status: canary
              -> the canary analysis promotes or rolls back -> the alias follows:
              promoted | rolled_back.  Not better, or refused: rejected.

The chat model's part (`Cycle.chat`) runs beside it: a preference run from the chat
model's serving version, an evaluation on held-out pairs (Wilcoxon signed-rank test of
the log-likelihood margins), governance, a canary or an alias move. The cycle stays
open until both parts have decided; its status is then the intent part's outcome
(the chat part's when the intent part was skipped).

Every step appends a `CycleStep` to the cycle's record (`personas history`) and each
change of status is audited. The cycle acts as `system`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelhub.domain.auth import Caller, Role
from modelhub.domain.deployments import DeploymentStatus
from modelhub.domain.enums import Stage
from modelhub.domain.monitoring import window_since
from modelhub.domain.personas import (
    OPEN_CYCLES,
    ChatCycle,
    ChatEvaluation,
    Cycle,
    CycleStatus,
    CycleStep,
    Evaluation,
    Interaction,
    LearnPlan,
    Persona,
    Regression,
    TriggerState,
)
from modelhub.domain.runs import FINAL, RunStatus
from modelhub.errors import Conflict, ModelhubError
from modelhub.services.persona_data import (
    chat_pairs,
    classifier_rows,
    contradictions,
    jsonl,
    labelled,
)
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
    """The intent classifier's part decided."""
    cycle = _step(cycle, "decision", status.value, reason=decision)
    return _settle(cycle.model_copy(update={"outcome": status, "decision": decision}))


def _chat_finish(cycle: Cycle, status: CycleStatus, decision: str) -> Cycle:
    """The chat model's part decided."""
    cycle = _step(cycle, "chat", status.value, reason=decision)
    assert cycle.chat is not None
    chat = cycle.chat.model_copy(update={"status": status, "decision": decision})
    return _settle(cycle.model_copy(update={"chat": chat}))


def _settle(cycle: Cycle) -> Cycle:
    """The cycle's status: open while a part is open (the intent part's state first),
    else the intent part's outcome (the chat part's when the intent part was skipped)."""
    intent_open = cycle.intent and cycle.outcome is None
    chat_open = cycle.chat is not None and cycle.chat.status in OPEN_CYCLES
    if intent_open:
        return cycle
    if chat_open:
        assert cycle.chat is not None
        return cycle.model_copy(update={"status": cycle.chat.status})
    if cycle.intent:
        assert cycle.outcome is not None
        return cycle.model_copy(update={"status": cycle.outcome, "finished_at": _now()})
    assert cycle.chat is not None
    return cycle.model_copy(
        update={
            "status": cycle.chat.status,
            "decision": f"chat model {cycle.chat.decision}",
            "finished_at": _now(),
        }
    )


def wilcoxon_greater(serving: list[float], candidate: list[float]) -> float:
    """One-sided p-value of the Wilcoxon signed-rank test that the candidate's values
    exceed the serving version's, pair by pair (1.0 when they never differ)."""
    from scipy.stats import wilcoxon

    if all(c == s for s, c in zip(serving, candidate, strict=True)):
        return 1.0
    result = wilcoxon(candidate, serving, alternative="greater", zero_method="zsplit")
    return float(result.pvalue)


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
        pairs = self._pairs(persona, everything)[0]
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
        if persona.chat_model and len(pairs) >= persona.policy.chat_min_pairs:
            would += f"; tune {persona.chat_model} on {len(pairs)} preference pairs"
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

    def _pairs(
        self, persona: Persona, everything: list[Interaction]
    ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        if not persona.chat_model:
            return [], []
        return chat_pairs(everything, persona.chat_model, persona.name, persona.policy.holdout)

    def chat_serving(self, persona: Persona) -> int | None:
        """The chat model's version the persona uses: its alias of the persona's name,
        else the newest version."""
        assert persona.chat_model is not None
        aliased = self.registry.aliases(persona.chat_model).get(persona.alias)
        if aliased is not None:
            return aliased
        try:
            return self.registry.get(f"{persona.chat_model}@latest").version
        except ModelhubError:
            return None

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
            if persona.chat_model:
                cycle = self._chat(persona, cycle, everything)
            if cycle.chat is not None:  # the chat model learns on its own
                cycle = cycle.model_copy(
                    update={"intent": False, "decision": f"skipped: {problem}"}
                )
                return self._save(_settle(cycle))
            return self._save(_finish(cycle, CycleStatus.SKIPPED, f"skipped: {problem}"))
        data = self._dataset(f"persona-{persona.name}-train", train)
        held = self._dataset(f"persona-{persona.name}-heldout", heldout)
        cycle = cycle.model_copy(update={"dataset": data, "heldout_dataset": held})
        previous = self.metadata.list_cycles(persona.name)[:-1]
        since = previous[-1].watermark if previous else 0
        cycle = _step(
            cycle,
            "data",
            "built",
            dataset=data,
            heldout=held,
            train_rows=len(train),
            heldout_rows=len(heldout),
            classes=sorted({row["label"] for row in train}),
            contradicting=contradictions(everything, persona.model, since),
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
        """The chat model's preference run, when enough rated pairs exist (from its
        serving version, on the train-side pairs); its failure to start is recorded and
        never stops the intent loop."""
        assert persona.chat_model is not None
        pairs, held = self._pairs(persona, everything)
        policy = persona.policy
        if len(pairs) < policy.chat_min_pairs or len(held) < policy.min_heldout:
            needs = {"needed": policy.chat_min_pairs, "heldout_needed": policy.min_heldout}
            return _step(
                cycle, "chat", "waiting", pairs=len(pairs), heldout_pairs=len(held), **needs
            )
        serving = self.chat_serving(persona)
        try:
            if serving is None:
                raise Conflict(f"{persona.chat_model} has no version", {})
            data = self._dataset(f"persona-{persona.name}-pairs", pairs)
            name, version = data.split("@")
            spec = chat_spec(persona, name, int(version), serving)
            self.training.create_pipeline(SYSTEM, spec)
            run = self.training.start(SYSTEM, f"persona-{persona.name}-chat")
        except ModelhubError as exc:
            return _step(cycle, "chat", "failed", pairs=len(pairs), error=exc.message)
        chat = ChatCycle(
            status=CycleStatus.TRAINING,
            run_id=run.id,
            dataset=data,
            pairs=len(pairs),
            heldout_pairs=len(held),
            serving_version=serving,
        )
        cycle = _step(cycle, "chat", "started", pairs=len(pairs), heldout_pairs=len(held),
                      dataset=data, run=run.id, base=f"{persona.chat_model}@{serving}")  # fmt: skip
        return cycle.model_copy(update={"chat": chat})

    # -- advancing -------------------------------------------------------------------------

    def advance(self, persona: Persona, cycle: Cycle) -> Cycle:
        """Move an open cycle on as far as it can go now: its chat part, then its intent
        part."""
        try:
            if cycle.chat is not None and cycle.chat.status in OPEN_CYCLES:
                cycle = self._advance_chat(persona, cycle)
        except Conflict:
            raise
        except ModelhubError as exc:
            cycle = self._save(_chat_finish(cycle, CycleStatus.FAILED, f"failed: {exc.message}"))
        if not cycle.intent or cycle.outcome is not None:
            return cycle
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
        regression = evaluation.regression
        if evaluation.rejected_by == "regression" and regression is not None:
            reason = (
                f"rejected by the regression check: on {regression.heldout} trusted held-out "
                f"rows (older than this cycle's data) accuracy {regression.candidate_accuracy:.3f}"
                f" against {regression.serving_accuracy:.3f}, serving-only right "
                f"{regression.serving_only_right} / candidate-only right "
                f"{regression.candidate_only_right} (p={regression.p_value:.3g} < "
                f"{evaluation.alpha:g}; the policy tolerates -{regression.tolerance:g})"
            )
            return self._save(_finish(cycle, CycleStatus.REJECTED, reason), persona)
        if not evaluation.better:
            reason = (
                f"rejected: held-out accuracy {evaluation.candidate_accuracy:.3f} against "
                f"{evaluation.serving_accuracy:.3f} (p={evaluation.p_value:.3g}); the policy "
                f"needs +{evaluation.margin:g} with p < {evaluation.alpha:g}"
            )
            return self._save(_finish(cycle, CycleStatus.REJECTED, reason), persona)
        return self._govern_and_roll_out(persona, cycle, candidate)

    def _trusted_watermark(self, persona: Persona, cycle: Cycle) -> int:
        """The data the serving version was promoted on: the watermark of the last
        promoted cycle before this one (0: none, the check has no rows)."""
        promoted = [
            c.watermark
            for c in self.metadata.list_cycles(persona.name)
            if c.number < cycle.number and c.status is CycleStatus.PROMOTED and c.intent
        ]
        return promoted[-1] if promoted else 0

    def _evaluate(self, persona: Persona, cycle: Cycle) -> Evaluation:
        import pandas as pd

        held = labelled(
            [
                i
                for i in self.metadata.list_interactions(persona.name, upto=cycle.watermark)
                if i.held_out
            ],
            persona.model,
        )
        frame = pd.DataFrame({"text": [i.message for i in held]})
        truth = [str(i.label) for i in held]
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
        trusted_upto = self._trusted_watermark(persona, cycle)
        trusted = [k for k, i in enumerate(held) if i.seq <= trusted_upto]
        regression = regression_check(
            [answers["serving"][k] for k in trusted],
            [answers["candidate"][k] for k in trusted],
            policy.tolerance,
            policy.alpha,
        )
        gain = candidate - serving >= policy.margin and p_value < policy.alpha
        rejected_by: Literal["regression", "gain"] | None = (
            "regression" if regression.regressed else None if gain else "gain"
        )
        return Evaluation(
            heldout=n,
            serving_accuracy=serving,
            candidate_accuracy=candidate,
            candidate_only_right=wins,
            serving_only_right=losses,
            p_value=p_value,
            margin=policy.margin,
            alpha=policy.alpha,
            better=rejected_by is None,
            regression=regression,
            rejected_by=rejected_by,
        )

    def _govern_and_roll_out(self, persona: Persona, cycle: Cycle, candidate: int) -> Cycle:
        stage = Stage(persona.policy.governance_stage)
        refused = self._govern(persona.model, candidate, stage)
        if refused is not None:
            cycle = _step(cycle, "governance", "refused", stage=stage.value, missing=refused)
            return self._save(_finish(cycle, CycleStatus.REJECTED, f"rejected: {refused}"), persona)
        cycle = _step(cycle, "governance", "passed", stage=stage.value)
        deployment = self._deployment(
            persona.model, cycle.serving_version, persona.policy.canary.deployment
        )
        if deployment is None:
            cycle = _step(cycle, "canary", "skipped", reason="no running deployment serves it")
            self.registry.set_alias(persona.model, persona.alias, candidate, SYSTEM.name)
            return self._save(_finish(cycle, CycleStatus.PROMOTED, "promoted without a canary"))
        self._canary(persona, deployment, candidate)
        policy = persona.policy.canary
        cycle = _step(cycle, "canary", "started", deployment=deployment, percent=policy.percent,
                      min_requests=policy.min_requests)  # fmt: skip
        cycle = cycle.model_copy(update={"status": CycleStatus.CANARY, "deployment": deployment})
        return self._save(cycle, persona)

    def _govern(self, model: str, candidate: int, stage: Stage) -> str | None:
        """None when the candidate passed the gate and moved to `stage`, else why not."""
        version = self.registry.get(f"{model}@{candidate}")
        missing = self.registry.gate_missing(version, stage)
        if missing:
            return f"governance for {stage.value} still needs " + "; ".join(missing)
        try:
            self.registry.set_stage(model, candidate, stage.value, SYSTEM.name)
        except ModelhubError as exc:
            return exc.message
        return None

    def _canary(self, persona: Persona, deployment: str, candidate: int) -> None:
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

    # -- the chat model's part ---------------------------------------------------------

    def _advance_chat(self, persona: Persona, cycle: Cycle) -> Cycle:
        chat = cycle.chat
        assert chat is not None and persona.chat_model is not None
        model = persona.chat_model
        if chat.status is CycleStatus.CANARY:
            assert chat.deployment is not None and chat.candidate_version is not None
            ended = self._canary_ended(chat.deployment, chat.candidate_version)
            if ended is None:
                return cycle
            status, reason = ended
            if status is CycleStatus.PROMOTED:
                self.registry.set_alias(model, persona.alias, chat.candidate_version, SYSTEM.name)
            return self._save(_chat_finish(cycle, status, reason), persona)
        assert chat.run_id is not None
        run = self.training.get_run(SYSTEM, chat.run_id)
        if run.status not in FINAL:
            return cycle
        if run.status is not RunStatus.COMPLETED or run.result_version is None:
            reason = f"training {run.status.value}: {run.error}"
            return self._save(_chat_finish(cycle, CycleStatus.FAILED, reason), persona)
        candidate = run.result_version
        _, held = self._pairs(
            persona, self.metadata.list_interactions(persona.name, upto=cycle.watermark)
        )
        assert chat.serving_version is not None
        evaluation = self._evaluate_chat(persona, model, chat.serving_version, candidate, held)
        chat = chat.model_copy(update={"candidate_version": candidate, "evaluation": evaluation})
        cycle = _step(cycle.model_copy(update={"chat": chat}), "chat",
                      "better" if evaluation.better else "not better",
                      candidate=candidate, **evaluation.model_dump(mode="json"))  # fmt: skip
        if not evaluation.better:
            reason = (
                f"rejected: on {evaluation.pairs} held-out pairs preference accuracy "
                f"{evaluation.candidate_accuracy:.3f} against {evaluation.serving_accuracy:.3f}"
                f" (Wilcoxon p={evaluation.p_value:.3g}, needs < {evaluation.alpha:g})"
            )
            return self._save(_chat_finish(cycle, CycleStatus.REJECTED, reason), persona)
        stage = Stage(persona.policy.governance_stage)
        refused = self._govern(model, candidate, stage)
        if refused is not None:
            reason = f"rejected: {refused}"
            return self._save(_chat_finish(cycle, CycleStatus.REJECTED, reason), persona)
        deployment = self._deployment(model, chat.serving_version, None)
        if deployment is None:
            self.registry.set_alias(model, persona.alias, candidate, SYSTEM.name)
            reason = "promoted without a canary (no running deployment serves it)"
            return self._save(_chat_finish(cycle, CycleStatus.PROMOTED, reason), persona)
        self._canary(persona, deployment, candidate)
        chat = chat.model_copy(update={"status": CycleStatus.CANARY, "deployment": deployment})
        cycle = _step(cycle.model_copy(update={"chat": chat}), "chat", "canary",
                      deployment=deployment)  # fmt: skip
        return self._save(_settle(cycle), persona)

    def _evaluate_chat(
        self,
        persona: Persona,
        model: str,
        serving: int,
        candidate: int,
        held: list[dict[str, str]],
    ) -> ChatEvaluation:
        from modelhub.training.trainers.char_lm_preference import pair_margins
        from modelhub.training.trainers.preference_data import Pair

        pairs = [Pair(r["prompt"], r["chosen"], r["rejected"]) for r in held]
        margins = {}
        for label, number in (("serving", serving), ("candidate", candidate)):
            folder = self.scorer.materialize(self.registry.get(f"{model}@{number}"))
            if not (folder / "config.json").exists():
                entries = [p for p in folder.iterdir() if p.is_dir()]
                folder = entries[0] if len(entries) == 1 else folder
            margins[label] = pair_margins(folder, pairs)
        n = len(pairs)
        p_value = wilcoxon_greater(margins["serving"], margins["candidate"])
        serving_accuracy = sum(m > 0 for m in margins["serving"]) / n
        candidate_accuracy = sum(m > 0 for m in margins["candidate"]) / n
        alpha = persona.policy.alpha
        return ChatEvaluation(
            pairs=n,
            serving_accuracy=serving_accuracy,
            candidate_accuracy=candidate_accuracy,
            serving_margin=sum(margins["serving"]) / n,
            candidate_margin=sum(margins["candidate"]) / n,
            p_value=p_value,
            alpha=alpha,
            better=p_value < alpha and candidate_accuracy >= serving_accuracy,
        )

    # -- rolling out -----------------------------------------------------------------------

    def _deployment(self, model: str, serving: int | None, named: str | None) -> str | None:
        for deployment in self.deployments.list_all(SYSTEM, model=model):
            if named is not None and deployment.name != named:
                continue
            if deployment.status is DeploymentStatus.RUNNING and (
                named is not None or deployment.primary_version == serving
            ):
                return deployment.name
        return None

    def _canary_ended(self, name: str, candidate: int) -> tuple[CycleStatus, str] | None:
        """The canary's outcome once it has one: promoted, rolled back, or failed."""
        deployment = self.deployments.get(SYSTEM, name)
        if deployment.status in (DeploymentStatus.FAILED, DeploymentStatus.STOPPED):
            return CycleStatus.FAILED, f"deployment {deployment.status.value}"
        if deployment.status is not DeploymentStatus.RUNNING or len(deployment.traffic) != 1:
            return None
        decisions = self.canary.decisions(SYSTEM, name, limit=1)
        reason = decisions[0].reason if decisions else "decided by a person"
        if deployment.primary_version == candidate:
            return CycleStatus.PROMOTED, f"promoted: {reason}"
        return CycleStatus.ROLLED_BACK, f"rolled back: {reason}"

    def _after_canary(self, persona: Persona, cycle: Cycle) -> Cycle:
        name, candidate = cycle.deployment, cycle.candidate_version
        assert name is not None and candidate is not None
        ended = self._canary_ended(name, candidate)
        if ended is None:
            return cycle
        status, reason = ended
        outcome = {CycleStatus.PROMOTED: "promote", CycleStatus.ROLLED_BACK: "rollback"}
        cycle = _step(cycle, "canary", outcome.get(status, status.value), reason=reason)
        if status is CycleStatus.PROMOTED:
            self.registry.set_alias(persona.model, persona.alias, candidate, SYSTEM.name)
        return self._save(_finish(cycle, status, reason), persona)

    def _save(self, cycle: Cycle, persona: Persona | None = None) -> Cycle:
        audit = AuditDraft(
            SYSTEM.name,
            f"personas.cycle_{cycle.status.value}",
            cycle.persona,
            {"cycle": cycle.number, "candidate": cycle.candidate_version},
        )
        return self.metadata.update_cycle(cycle, audit)


def regression_check(
    serving: list[bool], candidate: list[bool], tolerance: float, alpha: float
) -> Regression:
    """Is the candidate worse than the serving version on the trusted rows? Regressed
    when it loses more than `tolerance` of accuracy there and the one-sided exact
    McNemar test (scipy.stats.binomtest of the discordant pairs, serving-only right
    against candidate-only right) says so with p < alpha. A candidate that is truly no
    worse is flagged with probability at most alpha."""
    n = len(serving)
    if n == 0:
        return Regression(heldout=0, tolerance=tolerance)
    losses, wins, p_value = mcnemar(candidate, serving)  # the serving version's wins
    serving_accuracy, candidate_accuracy = sum(serving) / n, sum(candidate) / n
    return Regression(
        heldout=n,
        serving_accuracy=serving_accuracy,
        candidate_accuracy=candidate_accuracy,
        candidate_only_right=wins,
        serving_only_right=losses,
        p_value=p_value,
        tolerance=tolerance,
        regressed=serving_accuracy - candidate_accuracy > tolerance and p_value < alpha,
    )


def chat_spec(persona: Persona, dataset: str, version: int, serving: int) -> str:
    """The chat model's preference run from its serving version: rows {"prompt",
    "chosen", "rejected"}."""
    assert persona.chat_model is not None
    return (
        f"name: persona-{persona.name}-chat\ntype: reinforcement_learning\n"
        f"trainer: {CHAT_TRAINER}\nbase_model: {persona.chat_model}@{serving}\n"
        f"datasets: [{{name: {dataset}, version: {version}}}]\n"
        f"max_epochs: {persona.policy.epochs}\nseed: {persona.policy.seed}\n"
        f"hyperparameters: {json.dumps(persona.policy.chat_hyperparameters)}\n"
        f"result_model: {{name: {persona.chat_model}}}\n"
    )
