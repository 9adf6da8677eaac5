"""Personas: create and change them, take in their interactions, show them, and run
their learning cycles (now, or by policy from the server's loop). See docs/personas.md;
the cycle itself is `persona_cycle.LearningCycles`."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelhub.domain.auth import Action, Caller
from modelhub.domain.names import check_alias, check_model_name
from modelhub.domain.persona_pages import ModelInUse, PersonaPage, PersonaSummary
from modelhub.domain.personas import (
    MAX_BATCH,
    OPEN_CYCLES,
    Cycle,
    IngestReport,
    InteractionIn,
    LearnPlan,
    Persona,
    PersonaFigures,
    PersonaPolicy,
    PersonaView,
)
from modelhub.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from modelhub.services.persona_data import scrub
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.base_personas import PersonaDraft

if TYPE_CHECKING:
    from modelhub.services.auth import AuthService
    from modelhub.services.persona_cycle import LearningCycles
    from modelhub.services.registry import RegistryService
    from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger("modelhub.personas")


@dataclass(frozen=True)
class PersonaRequest:
    """`modelhub personas create NAME --model M [--chat-model C] [--alias A] [--policy F]`:
    the same from the API, the CLI and both clients. `policy` is the YAML text."""

    name: str
    model: str
    chat_model: str | None = None
    alias: str | None = None
    policy: str | None = None


class PersonaService:
    def __init__(
        self,
        metadata: MetadataStore,
        registry: RegistryService,
        auth: AuthService,
        cycles: LearningCycles,
        interval_seconds: float,
    ) -> None:
        self.metadata = metadata
        self.registry = registry
        self.auth = auth
        self.cycles = cycles
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the entity ------------------------------------------------------------------------

    def create(self, caller: Caller, request: PersonaRequest) -> Persona:
        """InvalidInput for a bad name, alias or policy; NotFound for a model that is
        not registered; Conflict for a taken name."""
        self.auth.authorize(caller, Action.PERSONAS_WRITE)
        name = check_model_name(request.name)
        model = check_model_name(request.model)
        alias = check_alias(request.alias or name)
        policy = PersonaPolicy.parse(request.policy)
        self.auth.authorize_owned(caller, Action.MODELS_REGISTER, self.registry.model_owner(model))
        versions = self.registry.versions(model)
        if not versions:
            raise InvalidInput(f"model {model} has no version to serve", {"field": "model"})
        chat = check_model_name(request.chat_model) if request.chat_model else None
        if chat is not None:
            self.registry.get_model(chat)  # NotFound names it
        # Checked before the alias is set, so that a refusal leaves nothing behind.
        if self._exists(name):
            raise Conflict(f"persona {name!r} already exists", {"persona": name})
        if alias not in self.registry.aliases(model):
            self.registry.set_alias(model, alias, versions[-1].version, caller.name)
        draft = PersonaDraft(name, model, alias, chat, policy, caller.name)
        details = {"model": f"{model}@{alias}", "chat_model": chat}
        return self.metadata.create_persona(
            draft, AuditDraft(caller.name, "personas.create", name, details)
        )

    def _exists(self, name: str) -> bool:
        try:
            self.metadata.get_persona(name)
        except NotFound:
            return False
        return True

    def get(self, caller: Caller, name: str) -> Persona:
        self.auth.authorize(caller, Action.PERSONAS_READ)
        return self.metadata.get_persona(name)

    def list_all(self, caller: Caller) -> list[Persona]:
        self.auth.authorize(caller, Action.PERSONAS_READ)
        return self.metadata.list_personas()

    def _owned(self, caller: Caller, name: str, action: Action) -> Persona:
        self.auth.authorize(caller, action)
        persona = self.metadata.get_persona(name)
        self.auth.authorize_owned(caller, action, persona.owner, "personas")
        return persona

    def set_policy(self, caller: Caller, name: str, policy: str) -> Persona:
        self._owned(caller, name, Action.PERSONAS_WRITE)
        parsed = PersonaPolicy.parse(policy)
        return self.metadata.update_persona(
            name, {"policy": parsed}, AuditDraft(caller.name, "personas.policy", name)
        )

    def delete(self, caller: Caller, name: str) -> None:
        self._owned(caller, name, Action.PERSONAS_WRITE)
        if self.metadata.list_cycles(name, OPEN_CYCLES):
            raise Conflict(
                f"persona {name} has a learning cycle open; wait for it to end",
                {"persona": name},
            )
        self.metadata.delete_persona(name, AuditDraft(caller.name, "personas.delete", name))

    def show(self, caller: Caller, name: str) -> PersonaView:
        """The persona, the version its alias serves, its counts and its last cycle."""
        self.auth.authorize(caller, Action.PERSONAS_READ)
        persona = self.metadata.get_persona(name)
        cycles = self.metadata.list_cycles(name)
        since = cycles[-1].watermark if cycles else 0
        return PersonaView(
            persona=persona,
            serving_version=self.cycles.serving_version(persona),
            counts=self.metadata.interaction_counts(name, since),
            last_cycle=cycles[-1] if cycles else None,
            cycles_by_status=dict(Counter(c.status.value for c in cycles)),
        )

    def history(self, caller: Caller, name: str) -> list[Cycle]:
        """Every cycle of the persona, oldest first, each with its steps."""
        self.auth.authorize(caller, Action.PERSONAS_READ)
        self.metadata.get_persona(name)
        return self.metadata.list_cycles(name)

    # -- the dashboard's pages -------------------------------------------------------------

    def board(self, caller: Caller) -> list[PersonaSummary]:
        """Every persona with the versions its models resolve to, its counts and its
        last cycle: the dashboard's list, in one call."""
        self.auth.authorize(caller, Action.PERSONAS_READ)
        summaries = []
        for persona in self.metadata.list_personas():
            cycles = self.metadata.list_cycles(persona.name)
            since = cycles[-1].watermark if cycles else 0
            summaries.append(
                PersonaSummary(
                    persona=persona,
                    models=self._models(persona),
                    counts=self.metadata.interaction_counts(persona.name, since),
                    last_cycle=cycles[-1] if cycles else None,
                )
            )
        return summaries

    def page(self, caller: Caller, name: str, dry_run: bool = False) -> PersonaPage:
        """One persona's page: `show`, its models, its history, whether `caller` may
        start a cycle (role and ownership, as `learn` checks them) and, with `dry_run`,
        what a cycle would do now."""
        view = self.show(caller, name)
        persona = view.persona
        try:
            self.auth.authorize_owned(caller, Action.PERSONAS_LEARN, persona.owner, "personas")
            may_learn = True
        except PermissionDenied:
            may_learn = False
        return PersonaPage(
            view=view,
            models=self._models(persona),
            history=self.metadata.list_cycles(name),
            may_learn=may_learn,
            plan=self.cycles.plan(persona) if dry_run else None,
        )

    def _models(self, persona: Persona) -> list[ModelInUse]:
        """The intent model by the persona's alias; the chat model by `latest`, the
        version its cycles fine-tune from."""
        models = [
            ModelInUse(
                role="intents",
                model=persona.model,
                alias=persona.alias,
                version=self.cycles.serving_version(persona),
            )
        ]
        if persona.chat_model:
            try:
                latest: int | None = self.registry.get(f"{persona.chat_model}@latest").version
            except NotFound:
                latest = None
            models.append(
                ModelInUse(role="chat", model=persona.chat_model, alias="latest", version=latest)
            )
        return models

    # -- interactions ----------------------------------------------------------------------

    def ingest(self, caller: Caller, name: str, items: list[InteractionIn]) -> IngestReport:
        """Take in a batch, all or nothing: each must name a version of one of the
        persona's models that exists; personal data is blanked before it is stored;
        an id seen before (or twice in the batch) is a duplicate, counted and skipped."""
        persona = self._owned(caller, name, Action.PERSONAS_INTERACT)
        if len(items) > MAX_BATCH:
            raise InvalidInput(
                f"a batch holds at most {MAX_BATCH} interactions, this one {len(items)}",
                {"field": "interactions", "limit": MAX_BATCH},
            )
        models = {persona.model, *([persona.chat_model] if persona.chat_model else [])}
        for index, item in enumerate(items):
            model = item.model or persona.model
            if model not in models:
                raise InvalidInput(
                    f"interactions[{index}]: {model} is not one of persona {name}'s models "
                    f"({', '.join(sorted(models))})",
                    {"field": f"interactions[{index}].model"},
                )
        for model, version in sorted({(i.model or persona.model, i.version) for i in items}):
            try:
                self.registry.get(f"{model}@{version}")
            except NotFound:
                raise NotFound(
                    f"model version {model}@{version} does not exist: no interaction was stored",
                    {"model": model, "version": version},
                ) from None
        scrubbed = scrub(name, persona.model, items, persona.policy.holdout)
        added, duplicates = self.metadata.add_interactions(
            name,
            scrubbed.drafts,
            AuditDraft(
                caller.name,
                "personas.interactions",
                name,
                {"received": len(items), "scrubbed": scrubbed.kinds},
            ),
        )
        stored = [scrubbed.drafts[index] for index in added]
        kinds: Counter[str] = Counter()
        for index in added:
            kinds.update(scrubbed.per_draft[index])
        return IngestReport(
            persona=name,
            received=len(items),
            added=len(added),
            duplicates=duplicates,
            scrubbed=dict(kinds),
            labelled=sum(1 for d in stored if d.label is not None),
        )

    # -- learning --------------------------------------------------------------------------

    def plan(self, caller: Caller, name: str) -> LearnPlan:
        """What a cycle would do now (data counts, trigger state); changes nothing."""
        self.auth.authorize(caller, Action.PERSONAS_READ)
        return self.cycles.plan(self.metadata.get_persona(name))

    def learn(self, caller: Caller, name: str) -> Cycle:
        """Start one cycle now (training runs in the background; `history` follows it).
        Conflict when a cycle is still open."""
        persona = self._owned(caller, name, Action.PERSONAS_LEARN)
        return self.cycles.begin(persona, "manual", caller.name)

    def tick(self) -> list[Cycle]:
        """One round of the server's loop: move open cycles on, start those whose
        triggers fire. The cycles it touched."""
        touched = []
        for persona in self.metadata.list_personas():
            try:
                open_cycles = self.metadata.list_cycles(persona.name, OPEN_CYCLES)
                if open_cycles:
                    touched.append(self.cycles.advance(persona, open_cycles[-1]))
                    continue
                fired = self.cycles.triggers(persona).fired
                if fired is not None:
                    touched.append(self.cycles.begin(persona, fired, "system"))
            except Conflict:
                continue  # another round (or `learn`) started one meanwhile
            except Exception:
                log.exception("learning cycle of persona %s failed; tried again", persona.name)
        return touched

    def figures(self) -> PersonaFigures:
        """Counts for /metrics: interactions, duplicates, scrubbed values, cycles by status."""
        return self.metadata.persona_figures()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="persona-learning", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.tick()
            except Exception:
                log.exception("persona learning round failed")
