from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelhub.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_actor(request: Request) -> str:
    """Who is calling. Authentication replaces this with the token's principal."""
    return str(request.headers.get("x-modelhub-actor") or "anonymous")


ServicesDep = Annotated[Services, Depends(get_services)]
ActorDep = Annotated[str, Depends(get_actor)]
