"""/api/v1/plugins: the extension points' parts, built-in and installed, and their status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from modelhub.api.deps import ServicesDep
from modelhub.api.security import requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.plugins import Plugin

router = APIRouter(prefix="/api/v1/plugins", tags=["plugins"])

PluginReader = Annotated[Caller, Depends(requires(Action.PLUGINS_READ))]


@router.get("", response_model=list[Plugin])
def list_plugins(services: ServicesDep, caller: PluginReader) -> list[Plugin]:
    return services.plugins.list_plugins(caller)
