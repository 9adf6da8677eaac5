"""Templates and the context every page gets: who is looking, what they may do, the
CSRF token its forms carry, and the filters that format numbers for people."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from modelhub import __version__
from modelhub.dashboard import format as fmt
from modelhub.dashboard.session import csrf_token
from modelhub.domain.auth import Action, Caller
from modelhub.services import Services

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC_DIR = HERE / "static"

# Markdown a user wrote (a model card): rendered without raw HTML, so it cannot inject
# markup or script; links keep only http(s) and relative targets.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str | None) -> Markup:
    return Markup(_MARKDOWN.render(text or ""))


TEMPLATES.env.filters.update(
    count=fmt.human_count,
    bytes=fmt.human_bytes,
    duration=fmt.human_duration,
    ago=fmt.time_ago,
    percent=fmt.percent,
    when=fmt.when,
    markdown=markdown,
)
TEMPLATES.env.globals.update(sparkline=fmt.sparkline, modelhub_version=__version__, Action=Action)

TABS = (
    ("registry", "Model Registry", "/models"),
    ("training", "Training Pipelines", "/training"),
    ("deployments", "Deployments", "/deployments"),
    ("monitoring", "Monitoring", "/monitoring"),
    ("governance", "Governance", "/governance"),
    ("personas", "Personas", "/personas"),
)


def is_htmx(request: Request) -> bool:
    """A partial update asked by htmx: answer with the fragment, not the whole page."""
    return request.headers.get("hx-request") == "true"


def base_context(request: Request, caller: Caller | None) -> dict[str, Any]:
    services: Services = request.app.state.services

    def can(action: Action | str) -> bool:
        """What the page offers; the server authorizes the call again when it is made."""
        return caller is not None and services.auth.allows(caller, Action(action))

    return {
        "request": request,
        "caller": caller,
        "can": can,
        "csrf": csrf_token(request),
        "tabs": TABS,
        "now": datetime.now(UTC),
        "auth_on": services.settings.auth,
    }


def page(
    request: Request,
    template: str,
    caller: Caller | None,
    *,
    tab: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render `template` (a whole page extending base.html, or a fragment)."""
    values = base_context(request, caller) | {"tab": tab} | context
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)


def go_to(request: Request, url: str) -> Response:
    """After an action: htmx follows HX-Redirect, a plain form a 303."""
    if is_htmx(request):
        return Response(status_code=204, headers={"hx-redirect": url})
    return RedirectResponse(url, status_code=303)


def refresh(request: Request) -> Response:
    """After an action whose result is the page it was taken on."""
    if is_htmx(request):
        return Response(status_code=204, headers={"hx-refresh": "true"})
    back = urlsplit(request.headers.get("referer") or "/")  # our own path only, never a site
    return RedirectResponse(back.path + (f"?{back.query}" if back.query else ""), 303)
