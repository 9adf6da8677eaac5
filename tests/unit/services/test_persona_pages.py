"""What the dashboard's personas tab asks of the persona service, one call a page: every
persona with the versions its models resolve to (none, once its alias is gone), and one
persona's page saying whether the caller may start a cycle (role and ownership, as
`learn` checks them), with the dry run only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.errors import NotFound
from modelhub.services import Services
from modelhub.services.personas import PersonaRequest
from modelhub.services.registry import RegisterRequest

OWNER = Caller(name="dev", role=Role.DEVELOPER)
OTHER = Caller(name="eve", role=Role.DEVELOPER)
VIEWER = Caller(name="vic", role=Role.VIEWER)
SCIENTIST = Caller(name="sam", role=Role.DATA_SCIENTIST)


@pytest.fixture
def persona(services: Services, safetensors_file: Path) -> str:
    services.registry.register(
        RegisterRequest(name="pp-intents", type="classification"), safetensors_file, OWNER.name
    )
    for _ in range(2):
        services.registry.register(
            RegisterRequest(name="pp-chat", type="generation"), safetensors_file, OWNER.name
        )
    services.personas.create(OWNER, PersonaRequest("pp", "pp-intents", chat_model="pp-chat"))
    return "pp"


def test_the_board_lists_each_persona_with_its_models(services: Services, persona: str) -> None:
    [row] = services.personas.board(VIEWER)
    assert row.persona.name == persona and row.last_cycle is None
    assert [(m.role, m.model, m.alias, m.version) for m in row.models] == [
        ("intents", "pp-intents", "pp", 1),
        ("chat", "pp-chat", "latest", 2),
    ]
    assert row.counts.interactions == 0
    services.registry.remove_alias("pp-intents", "pp", OWNER.name)
    [row] = services.personas.board(VIEWER)
    assert row.models[0].version is None  # shown as "no version"


def test_the_page_says_who_may_learn_and_plans_only_when_asked(
    services: Services, persona: str
) -> None:
    may = {c.name: services.personas.page(c, persona).may_learn for c in (OWNER, OTHER, VIEWER)}
    assert may == {"dev": True, "eve": False, "vic": False}
    assert services.personas.page(SCIENTIST, persona).may_learn  # any persona
    plain = services.personas.page(OWNER, persona)
    assert plain.plan is None and plain.history == [] and plain.view.persona.name == persona
    planned = services.personas.page(OWNER, persona, dry_run=True)
    assert planned.plan is not None and planned.plan.would.startswith("skip: ")
    cycle = services.personas.learn(OWNER, persona)
    after = services.personas.page(VIEWER, persona)
    assert [c.number for c in after.history] == [cycle.number]
    assert after.view.last_cycle == cycle
    with pytest.raises(NotFound):
        services.personas.page(OWNER, "pp-nobody")
