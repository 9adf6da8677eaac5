"""The dashboard's page of one dataset version (`/datasets/NAME/VERSION`): what
`GET /api/v1/datasets/NAME/versions/VERSION` returns, for the links from a training
run's lineage and a persona's learning cycles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import page
from modelhub.dashboard.session import page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.limits import PositiveInt64
from modelhub.services import Services

router = APIRouter(tags=[TAG], include_in_schema=False)

DatasetReader = Annotated[Caller, Depends(page_requires(Action.DATASETS_READ))]


@router.get("/datasets/{name}/{version}", response_class=HTMLResponse)
def dataset(
    request: Request, name: str, version: PositiveInt64, caller: DatasetReader
) -> HTMLResponse:
    services: Services = request.app.state.services
    found = services.datasets.get(caller, f"{name}@{version}")
    return page(request, "training/dataset.html", caller, tab="training", dataset=found)
