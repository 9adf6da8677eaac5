"""The persona calls of `LocalClient`, over the services in this process."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.personas import (
    Cycle,
    IngestReport,
    InteractionIn,
    LearnPlan,
    Persona,
    PersonaView,
)
from modelhub.services.personas import PersonaRequest


class LocalPersonaCalls(LocalHome):
    def create_persona(self, request: PersonaRequest) -> Persona:
        return self.services.personas.create(self.caller, request)

    def list_personas(self) -> list[Persona]:
        return self.services.personas.list_all(self.caller)

    def show_persona(self, name: str) -> PersonaView:
        return self.services.personas.show(self.caller, name)

    def set_persona_policy(self, name: str, policy: str) -> Persona:
        return self.services.personas.set_policy(self.caller, name, policy)

    def delete_persona(self, name: str) -> None:
        self.services.personas.delete(self.caller, name)

    def add_interactions(self, name: str, interactions: list[InteractionIn]) -> IngestReport:
        return self.services.personas.ingest(self.caller, name, interactions)

    def learn(self, name: str) -> Cycle:
        return self.services.personas.learn(self.caller, name)

    def learn_plan(self, name: str) -> LearnPlan:
        return self.services.personas.plan(self.caller, name)

    def persona_history(self, name: str) -> list[Cycle]:
        return self.services.personas.history(self.caller, name)
