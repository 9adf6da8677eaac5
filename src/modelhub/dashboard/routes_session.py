"""Sign in with an API token, sign out, who is signed in, and `/` (the registry tab)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modelhub.api.security import admit_request
from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import go_to, page
from modelhub.dashboard.session import (
    PagePublic,
    PageReader,
    end_session,
    page_requires,
    session_token,
    start_session,
)
from modelhub.domain.auth import Action, Caller
from modelhub.services import Services

router = APIRouter(tags=[TAG], include_in_schema=False)
SignedIn = Annotated[Caller, Depends(page_requires(Action.AUTH_SELF))]


def local_path(target: str | None) -> str:
    """`target` if it is a path on this server, else `/`: never a redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/", response_class=RedirectResponse)
def home(_: PageReader) -> RedirectResponse:
    return RedirectResponse("/models", status_code=303)


@router.get("/signin", response_class=HTMLResponse)
def sign_in_form(request: Request, _: PagePublic, next: str = "/") -> HTMLResponse:
    return page(request, "signin.html", None, next=local_path(next), error=None)


@router.post("/signin")
def sign_in(
    request: Request,
    _: PagePublic,
    token: Annotated[str, Form(max_length=512)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    admit_request(request, Action.AUTH_SELF, token.strip())  # a wrong token: 401, counted
    response = RedirectResponse(local_path(next), status_code=303)
    start_session(request, response, token.strip())
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, caller: SignedIn) -> HTMLResponse:
    """Who is signed in, with which role and token, and what that role may do."""
    services: Services = request.app.state.services
    principal = services.auth.whoami(caller)
    allowed = [a for a in Action if a != Action.PUBLIC and services.auth.allows(caller, a)]
    return page(request, "account.html", caller, principal=principal, allowed=allowed)


@router.post("/signout")
def sign_out(request: Request, _: SignedIn) -> Response:
    response = go_to(request, "/signin")
    if session_token(request) is not None:
        end_session(response)
    return response
