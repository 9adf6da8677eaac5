"""What the dashboard's Personas tab shows, each page in one record: the list of
personas with the models they call, and one persona with its history and what the
person looking may do. Built by `PersonaService.board` and `PersonaService.page`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelhub.domain.personas import Cycle, LearnPlan, Persona, PersonaCounts, PersonaView
from modelhub.domain.records import Record


class ModelInUse(Record):
    """One model a persona calls, by the name it calls it, and the version that names."""

    role: Literal["intents", "chat"]
    model: str
    alias: str
    version: int | None = Field(description="None: the alias points at no version")


class PersonaSummary(Record):
    """One row of the personas list."""

    persona: Persona
    models: list[ModelInUse]
    counts: PersonaCounts
    last_cycle: Cycle | None


class PersonaPage(Record):
    """One persona's page: the API's view of it, its models, every cycle (oldest
    first), whether the caller may start a cycle, and the dry run when asked for."""

    view: PersonaView
    models: list[ModelInUse]
    history: list[Cycle]
    may_learn: bool
    plan: LearnPlan | None = None
