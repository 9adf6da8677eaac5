"""Mount the dashboard on the API app: its routes (tagged `dashboard`, out of the
OpenAPI schema) and its static files."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from modelhub.dashboard import (
    routes_datasets,
    routes_deployments,
    routes_governance,
    routes_monitoring,
    routes_optimise,
    routes_overview,
    routes_personas,
    routes_registry,
    routes_session,
    routes_training,
)
from modelhub.dashboard.render import STATIC_DIR

ROUTERS = (
    routes_session,
    routes_overview,
    routes_registry,
    routes_optimise,
    routes_training,
    routes_deployments,
    routes_monitoring,
    routes_governance,
    routes_personas,
    routes_datasets,
)


def mount_dashboard(app: FastAPI) -> None:
    # Keys the CSRF token of requests without a session (auth switched off).
    app.state.csrf_key = secrets.token_hex(32)
    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
