"""The dashboard's overview: the four stat cards base.html loads from /stats."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import page
from modelhub.dashboard.session import PageReader
from modelhub.services import Services

router = APIRouter(tags=[TAG], include_in_schema=False)


@router.get("/stats", response_class=HTMLResponse)
def stats(request: Request, caller: PageReader) -> HTMLResponse:
    services: Services = request.app.state.services
    return page(request, "overview/stats.html", caller, overview=services.overview.figures(caller))
