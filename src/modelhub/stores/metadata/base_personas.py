"""The personas part of the metadata store interface: personas, their interactions
and their learning cycles."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelhub.domain.personas import (
    Cycle,
    CycleStatus,
    Interaction,
    Persona,
    PersonaCounts,
    PersonaFigures,
    PersonaPolicy,
)

if TYPE_CHECKING:
    from modelhub.stores.metadata.base import AuditDraft


@dataclass(frozen=True)
class PersonaDraft:
    name: str
    model: str
    alias: str
    chat_model: str | None
    policy: PersonaPolicy
    owner: str


@dataclass(frozen=True)
class InteractionDraft:
    id: str
    model: str
    version: int
    request_id: str | None
    message: str
    response: str
    feedback: dict[str, Any]
    label: str | None
    held_out: bool
    scrubbed: int


class PersonaStore(abc.ABC):
    @abc.abstractmethod
    def create_persona(self, draft: PersonaDraft, audit: AuditDraft) -> Persona:
        """Conflict when the name is taken."""

    @abc.abstractmethod
    def get_persona(self, name: str) -> Persona:
        """NotFound when there is no such persona."""

    @abc.abstractmethod
    def list_personas(self) -> list[Persona]: ...

    @abc.abstractmethod
    def update_persona(self, name: str, changes: dict[str, Any], audit: AuditDraft) -> Persona:
        """Change `policy`, `chat_model`, `alias` or `owner`; NotFound names a missing one."""

    @abc.abstractmethod
    def delete_persona(self, name: str, audit: AuditDraft) -> None:
        """The persona, its interactions and cycles; NotFound when there is none."""

    @abc.abstractmethod
    def add_interactions(
        self, persona: str, drafts: list[InteractionDraft], audit: AuditDraft
    ) -> tuple[list[int], int]:
        """Add the drafts whose id the persona has not seen, in one transaction:
        (the indexes in `drafts` of those added, duplicates). The persona's duplicate
        count grows by the second."""

    @abc.abstractmethod
    def list_interactions(
        self, persona: str, upto: int | None = None, labelled_only: bool = False
    ) -> list[Interaction]:
        """Oldest first; `upto`: those with seq <= upto."""

    @abc.abstractmethod
    def interaction_counts(self, persona: str, since: int) -> PersonaCounts:
        """Counts; `new_labelled` counts labelled, not held out, with seq > since."""

    @abc.abstractmethod
    def create_cycle(self, cycle: Cycle, audit: AuditDraft) -> Cycle:
        """Store a new cycle (its id and number are given here); Conflict when the
        persona has a cycle still open (training or in canary)."""

    @abc.abstractmethod
    def update_cycle(self, cycle: Cycle, audit: AuditDraft | None = None) -> Cycle:
        """Replace the stored record of `cycle.id`; Conflict unless it is still at
        `cycle.revision` (another server moved it on meanwhile)."""

    @abc.abstractmethod
    def list_cycles(
        self, persona: str | None = None, statuses: frozenset[CycleStatus] | None = None
    ) -> list[Cycle]:
        """Oldest first."""

    @abc.abstractmethod
    def persona_figures(self) -> PersonaFigures: ...
