"""The dashboard's personas views: the list of personas with the versions their models
resolve to, one persona's page (models, policy, counts, learning cycles and a chart of
held-out accuracy by cycle), and its two actions, "Learn now" and "Dry run".

Each view makes one service call (`PersonaService.board`, `page`, `plan`, `learn`);
both actions are guarded by `personas.learn`, the API's `POST /personas/NAME/learn`
permission, carry the CSRF token, and the service checks ownership again.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import go_to, is_htmx, page, refresh
from modelhub.dashboard.session import page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.personas import Cycle
from modelhub.services import Services

router = APIRouter(tags=[TAG], include_in_schema=False)

PersonaReader = Annotated[Caller, Depends(page_requires(Action.PERSONAS_READ))]
PersonaLearner = Annotated[Caller, Depends(page_requires(Action.PERSONAS_LEARN))]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def persona_url(name: str) -> str:
    return f"/personas/{quote(name, safe='')}"


def accuracy_chart(history: list[Cycle]) -> dict[str, Any]:
    """Held-out accuracy (percent) of the serving version and the candidate, one point
    per evaluated cycle (x: the cycle's number), for `ui.chart`."""
    evaluated = [cycle for cycle in history if cycle.evaluation is not None]
    return {
        "x": [cycle.number for cycle in evaluated],
        "time": False,
        "series": [
            {
                "label": "serving %",
                "values": [100 * c.evaluation.serving_accuracy for c in evaluated if c.evaluation],
            },
            {
                "label": "candidate %",
                "values": [
                    100 * c.evaluation.candidate_accuracy for c in evaluated if c.evaluation
                ],
            },
        ],
    }


@router.get("/personas", response_class=HTMLResponse)
def personas(request: Request, caller: PersonaReader) -> HTMLResponse:
    summaries = _services(request).personas.board(caller)
    return page(request, "personas/list.html", caller, tab="personas", summaries=summaries)


def _persona_page(request: Request, caller: Caller, name: str, dry_run: bool) -> HTMLResponse:
    found = _services(request).personas.page(caller, name, dry_run)
    return page(
        request,
        "personas/detail.html",
        caller,
        tab="personas",
        view=found,
        persona=found.view.persona,
        plan=found.plan,
        chart=accuracy_chart(found.history),
    )


@router.get("/personas/{name}", response_class=HTMLResponse)
def persona(request: Request, name: str, caller: PersonaReader) -> HTMLResponse:
    return _persona_page(request, caller, name, dry_run=False)


@router.post("/personas/{name}/plan", response_class=HTMLResponse)
async def dry_run(request: Request, name: str, caller: PersonaLearner) -> HTMLResponse:
    """What a cycle would do now, changing nothing: the fragment under the buttons for
    htmx, the whole page with it otherwise."""
    if is_htmx(request):
        plan = await run_in_threadpool(_services(request).personas.plan, caller, name)
        return page(request, "personas/_plan.html", caller, tab="personas", plan=plan)
    return await run_in_threadpool(_persona_page, request, caller, name, True)


@router.post("/personas/{name}/learn")
async def learn(request: Request, name: str, caller: PersonaLearner) -> Response:
    """Start a cycle now; its page shows it in the history. A refusal (a cycle already
    open, someone else's persona) is the service's message, as the API and CLI give."""
    cycle = await run_in_threadpool(_services(request).personas.learn, caller, name)
    if is_htmx(request):
        # The page it was taken on, reloaded: a redirect to it that differs only by the
        # #cycle-N anchor would move the view without loading the new cycle.
        return refresh(request)
    return go_to(request, f"{persona_url(name)}#cycle-{cycle.number}")
