"""Errors on dashboard routes, as HTML: the same message the API and the CLI give.

A full page load gets a page (the sign-in form when nobody is signed in); an htmx
request gets a fragment with the error's status, which dashboard.js puts next to the
form that sent it.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.routing import BaseRoute

from modelhub.dashboard.render import is_htmx, page

TAG = "dashboard"


# Paths that belong to the API, the inference protocols and the probes: their errors stay
# JSON whoever asks.
MACHINE_PATHS = ("/api/", "/v1/", "/v2", "/metrics", "/healthz", "/readyz", "/openapi.json")


def is_dashboard_request(request: Request) -> bool:
    """A request to a dashboard route, or a browser's request for a page that does not
    exist (a 404 from no route at all gets a page, not JSON)."""
    route: BaseRoute | None = request.scope.get("route")
    if route is not None:
        return TAG in (getattr(route, "tags", None) or [])
    if request.url.path.startswith(MACHINE_PATHS):
        return False
    return is_htmx(request) or "text/html" in request.headers.get("accept", "")


def error_page(request: Request, code: str, message: str, status: int) -> HTMLResponse:
    caller = getattr(request.state, "caller", None)
    if is_htmx(request):
        return page(request, "_error.html", caller, status_code=status, code=code, message=message)
    if code == "unauthenticated":
        return page(
            request, "signin.html", None, status_code=status, error=message, next=_next(request)
        )
    return page(request, "error.html", caller, status_code=status, code=code, message=message)


def _next(request: Request) -> str:
    """Where to go after signing in: this page, if it is one (a GET of ours)."""
    if request.method != "GET":
        return "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
