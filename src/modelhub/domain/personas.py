"""Personas: an AI character of the hub, the models it calls, what it is told back
(interactions) and how it learns from that (learning cycles).

A persona calls its intent classifier as `MODEL@ALIAS`, so a promotion (the alias
moving to a new version) changes what it calls without touching the persona. Its
learning policy is YAML (`PersonaPolicy.parse`); every key is documented in
docs/personas.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from modelhub.domain.auth import parse_duration
from modelhub.domain.limits import load_yaml_mapping
from modelhub.domain.records import Record
from modelhub.errors import InvalidInput

MAX_BATCH = 1000  # interactions in one request
MAX_TEXT_CHARS = 8000  # a message, a response or a correction
MAX_ID_CHARS = 128  # an interaction id or a request id
MAX_LABEL_CHARS = 128
TRIGGERS = ("new_labels", "drift", "schedule")


class CanaryPolicy(Record):
    deployment: str | None = Field(
        default=None, description="None: the running deployment of the persona's model"
    )
    percent: int = Field(default=50, ge=1, le=99)
    min_requests: int = Field(default=200, ge=1, le=1_000_000)
    max_duration: str = "30m"

    @field_validator("max_duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value, "canary.max_duration")
        return value


class Triggers(Record):
    new_labels: int | None = Field(default=50, ge=1, le=1_000_000)
    drift: bool = False
    schedule: str | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value, "triggers.schedule")
        return value

    @property
    def schedule_every(self) -> timedelta | None:
        return parse_duration(self.schedule, "triggers.schedule") if self.schedule else None


class PersonaPolicy(Record):
    """When a persona learns and what a candidate must show to be promoted."""

    triggers: Triggers = Field(default_factory=Triggers)
    holdout: float = Field(default=0.2, ge=0.05, le=0.5)
    margin: float = Field(default=0.02, ge=0.0, le=1.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    min_heldout: int = Field(default=10, ge=1, le=1_000_000)
    epochs: int = Field(default=5, ge=1, le=100)
    hyperparameters: dict[str, float | int | str | bool] = Field(
        default_factory=dict,
        max_length=32,
        description="passed to the text classifier's runs (learning_rate, hidden...)",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    governance_stage: Literal["staging", "production"] = "staging"
    canary: CanaryPolicy = Field(default_factory=CanaryPolicy)
    chat_min_pairs: int = Field(default=10, ge=1, le=1_000_000)
    drift_since: str = "1h"

    @classmethod
    def parse(cls, text: str | None) -> PersonaPolicy:
        """The policy a YAML text says; None or empty: the defaults. InvalidInput names
        the key at fault (an unknown trigger, a margin out of range...)."""
        if text is None or not text.strip():
            return cls()
        data = load_yaml_mapping(text, "persona policy", "policy")
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PersonaPolicy:
        triggers = data.get("triggers")
        if isinstance(triggers, dict):
            unknown = sorted(str(k) for k in triggers if k not in TRIGGERS)
            if unknown:
                raise InvalidInput(
                    f"unknown trigger {unknown[0]!r}: a policy's triggers are "
                    + ", ".join(TRIGGERS),
                    {"field": f"triggers.{unknown[0]}"},
                )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "policy"
            raise InvalidInput(
                f"persona policy: {where}: {error['msg']}", {"field": where}
            ) from None


class Persona(Record):
    name: str
    model: str = Field(description="the intent classifier the persona calls, as MODEL@ALIAS")
    alias: str
    chat_model: str | None = None
    policy: PersonaPolicy
    owner: str
    created_at: datetime
    updated_at: datetime


class Feedback(Record):
    """What a person said about one answer: any of the four, at least one."""

    thumbs: Literal["up", "down"] | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    correction: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    label: str | None = Field(default=None, min_length=1, max_length=MAX_LABEL_CHARS)


class InteractionIn(Record):
    """One interaction as a client sends it."""

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    message: str = Field(max_length=MAX_TEXT_CHARS)
    response: str = Field(default="", max_length=MAX_TEXT_CHARS)
    model: str | None = Field(
        default=None, max_length=100, description="None: the persona's intent model"
    )
    version: int = Field(ge=1, le=2**63 - 1)
    request_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    feedback: Feedback = Field(default_factory=Feedback)

    def label(self) -> str | None:
        """The intent this interaction teaches: a label, a correction, or the answer
        itself when the person gave it a thumbs up."""
        if self.feedback.label:
            return self.feedback.label
        if self.feedback.correction:
            return self.feedback.correction
        if self.feedback.thumbs == "up" and self.response:
            return self.response
        return None


class Interaction(Record):
    seq: int
    id: str
    persona: str
    model: str
    version: int
    request_id: str | None
    message: str
    response: str
    feedback: Feedback
    label: str | None
    held_out: bool
    scrubbed: int
    created_at: datetime


class IngestReport(Record):
    persona: str
    received: int
    added: int
    duplicates: int
    scrubbed: dict[str, int] = Field(default_factory=dict, description="kind -> values blanked")
    labelled: int


class CycleStatus(StrEnum):
    TRAINING = "training"
    CANARY = "canary"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    SKIPPED = "skipped"


OPEN_CYCLES = frozenset({CycleStatus.TRAINING, CycleStatus.CANARY})


class CycleStep(Record):
    step: str = Field(description="data, train, chat, evaluate, governance, canary, decision")
    outcome: str
    at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class Evaluation(Record):
    heldout: int
    serving_accuracy: float
    candidate_accuracy: float
    candidate_only_right: int = Field(description="discordant pairs the candidate wins")
    serving_only_right: int
    p_value: float
    margin: float
    alpha: float
    better: bool


class Cycle(Record):
    id: int
    persona: str
    number: int
    trigger: str
    status: CycleStatus
    serving_version: int | None = None
    candidate_version: int | None = None
    run_id: int | None = None
    dataset: str | None = None
    heldout_dataset: str | None = None
    watermark: int = Field(description="the newest interaction (seq) the cycle's data holds")
    revision: int = Field(default=0, description="bumped by every stored change")
    evaluation: Evaluation | None = None
    deployment: str | None = None
    decision: str | None = None
    steps: list[CycleStep] = Field(default_factory=list)
    started_at: datetime
    finished_at: datetime | None = None


class TriggerState(Record):
    new_labels: int
    needed: int | None
    drift: bool | None = None
    schedule_due: bool | None = None
    fired: str | None = Field(description="the trigger that fires now, None when none")


class LearnPlan(Record):
    """What `personas learn --dry-run` says a cycle would do, changing nothing."""

    persona: str
    triggers: TriggerState
    train_rows: int
    heldout_rows: int
    classes: list[str]
    chat_pairs: int
    serving: str | None
    would: str


class PersonaCounts(Record):
    interactions: int
    labelled: int
    held_out: int
    new_labelled: int
    duplicates: int
    scrubbed: int


class PersonaView(Record):
    """Everything a page about one persona shows: the persona, what it calls now, its
    counts and its last cycle."""

    persona: Persona
    serving_version: int | None
    counts: PersonaCounts
    last_cycle: Cycle | None
    cycles_by_status: dict[str, int] = Field(default_factory=dict)


class PersonaFigures(Record):
    """Platform-wide counts for /metrics."""

    interactions: int
    duplicates: int
    scrubbed: int
    cycles: dict[str, int]
