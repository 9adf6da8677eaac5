"""/api/v1/personas: thin routes over PersonaService (docs/personas.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body
from modelhub.api.security import requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.limits import non_finite_number, unencodable_text
from modelhub.domain.personas import (
    MAX_BATCH,
    Cycle,
    IngestReport,
    InteractionIn,
    LearnPlan,
    Persona,
    PersonaView,
)
from modelhub.errors import InvalidInput, PayloadTooLarge
from modelhub.services.personas import PersonaRequest

router = APIRouter(prefix="/api/v1", tags=["personas"])

PersonaReader = Annotated[Caller, Depends(requires(Action.PERSONAS_READ))]
PersonaWriter = Annotated[Caller, Depends(requires(Action.PERSONAS_WRITE))]
PersonaInteractor = Annotated[Caller, Depends(requires(Action.PERSONAS_INTERACT))]
PersonaLearner = Annotated[Caller, Depends(requires(Action.PERSONAS_LEARN))]

MAX_INTERACTIONS_BYTES = 16 * 1024 * 1024


class PersonaBody(Body):
    name: str = Field(max_length=100)
    model: str = Field(max_length=100)
    chat_model: str | None = Field(default=None, max_length=100)
    alias: str | None = Field(default=None, max_length=64)
    policy: str | None = Field(default=None, max_length=100_000, description="policy YAML")


class PolicyBody(Body):
    policy: str = Field(max_length=100_000)


class InteractionsBody(Body):
    interactions: list[InteractionIn] = Field(max_length=MAX_BATCH)


@router.post("/personas", response_model=Persona, status_code=201)
def create(body: PersonaBody, services: ServicesDep, caller: PersonaWriter) -> Persona:
    request = PersonaRequest(body.name, body.model, body.chat_model, body.alias, body.policy)
    return services.personas.create(caller, request)


@router.get("/personas", response_model=list[Persona])
def list_personas(services: ServicesDep, caller: PersonaReader) -> list[Persona]:
    return services.personas.list_all(caller)


@router.get("/personas/{name}", response_model=PersonaView)
def show(name: str, services: ServicesDep, caller: PersonaReader) -> PersonaView:
    return services.personas.show(caller, name)


@router.put("/personas/{name}/policy", response_model=Persona)
def set_policy(
    name: str, body: PolicyBody, services: ServicesDep, caller: PersonaWriter
) -> Persona:
    return services.personas.set_policy(caller, name, body.policy)


@router.delete("/personas/{name}", status_code=204)
def delete(name: str, services: ServicesDep, caller: PersonaWriter) -> None:
    services.personas.delete(caller, name)


@router.post("/personas/{name}/interactions", response_model=IngestReport)
async def interactions(
    name: str, request: Request, services: ServicesDep, caller: PersonaInteractor
) -> IngestReport:
    """`{"interactions": [...]}`, at most MAX_BATCH, validated whole before any is stored."""
    body = await _bounded_json(request)
    try:
        parsed = InteractionsBody.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(f"{where}: {error['msg']}", {"field": where}) from None
    return await run_in_threadpool(services.personas.ingest, caller, name, parsed.interactions)


async def _bounded_json(request: Request) -> Any:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_INTERACTIONS_BYTES:
            raise PayloadTooLarge(
                f"a batch of interactions holds at most {MAX_INTERACTIONS_BYTES} bytes; split it",
                {"limit": MAX_INTERACTIONS_BYTES},
            )
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except RecursionError:
        raise InvalidInput("the body is nested too deeply", {"field": "body"}) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", {"field": "body"}) from None
    where = unencodable_text(body) or non_finite_number(body)
    if where is not None:
        raise InvalidInput(f"{where}: not storable text or number", {"field": where})
    return body


@router.post("/personas/{name}/learn", response_model=Cycle)
def learn(name: str, services: ServicesDep, caller: PersonaLearner) -> Cycle:
    return services.personas.learn(caller, name)


@router.get("/personas/{name}/learn", response_model=LearnPlan)
def plan(name: str, services: ServicesDep, caller: PersonaReader) -> LearnPlan:
    """What `learn` would do now (the --dry-run); changes nothing."""
    return services.personas.plan(caller, name)


@router.get("/personas/{name}/history", response_model=list[Cycle])
def history(name: str, services: ServicesDep, caller: PersonaReader) -> list[Cycle]:
    return services.personas.history(caller, name)
