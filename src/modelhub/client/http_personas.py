"""The persona calls of `modelhub.Client` (docs/personas.md)."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import TypeAdapter

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.personas import (
    Cycle,
    IngestReport,
    InteractionIn,
    LearnPlan,
    Persona,
    PersonaView,
)
from modelhub.services.personas import PersonaRequest

_PERSONAS = TypeAdapter(list[Persona])
_CYCLES = TypeAdapter(list[Cycle])


def _path(name: str) -> str:
    return f"/api/v1/personas/{quote(name, safe='')}"


class PersonaCalls(HttpConnection):
    def create_persona(self, request: PersonaRequest) -> Persona:
        body = {
            "name": request.name,
            "model": request.model,
            "chat_model": request.chat_model,
            "alias": request.alias,
            "policy": request.policy,
        }
        return Persona.model_validate(self._request("POST", "/api/v1/personas", json=body))

    def list_personas(self) -> list[Persona]:
        return _PERSONAS.validate_python(self._request("GET", "/api/v1/personas"))

    def show_persona(self, name: str) -> PersonaView:
        return PersonaView.model_validate(self._request("GET", _path(name)))

    def set_persona_policy(self, name: str, policy: str) -> Persona:
        reply = self._request("PUT", f"{_path(name)}/policy", json={"policy": policy})
        return Persona.model_validate(reply)

    def delete_persona(self, name: str) -> None:
        self._request("DELETE", _path(name))

    def add_interactions(self, name: str, interactions: list[InteractionIn]) -> IngestReport:
        body = {"interactions": [i.model_dump(mode="json") for i in interactions]}
        reply = self._request("POST", f"{_path(name)}/interactions", json=body)
        return IngestReport.model_validate(reply)

    def learn(self, name: str) -> Cycle:
        return Cycle.model_validate(self._request("POST", f"{_path(name)}/learn"))

    def learn_plan(self, name: str) -> LearnPlan:
        return LearnPlan.model_validate(self._request("GET", f"{_path(name)}/learn"))

    def persona_history(self, name: str) -> list[Cycle]:
        return _CYCLES.validate_python(self._request("GET", f"{_path(name)}/history"))
