"""Who is looking at the dashboard: the session cookie, its CSRF token, and the one
dependency each page and action declares (as each API route declares `requires`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Response

from modelhub.api.security import admit_request, bearer_token
from modelhub.domain.auth import Action, Caller
from modelhub.errors import PermissionDenied

COOKIE = "modelhub_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A session lasts as long as its token; the cookie itself is kept for at most a week.
COOKIE_MAX_AGE = 7 * 24 * 3600


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def csrf_token(request: Request) -> str:
    """The token this session's forms carry: an HMAC keyed by the session's secret, so
    another site, which cannot read the HttpOnly cookie, cannot compute it. Without a
    session (auth switched off) the key is the server's own random key."""
    key = session_token(request) or request.app.state.csrf_key
    return hmac.new(key.encode(), b"modelhub dashboard csrf", hashlib.sha256).hexdigest()


async def _check_csrf(request: Request) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if sent is None or not hmac.compare_digest(sent, csrf_token(request)):
        raise PermissionDenied(
            "the request carries no valid CSRF token: reload the page and try again",
            {"reason": "csrf"},
        )


def page_requires(action: Action) -> Callable[[Request], Awaitable[Caller]]:
    """The dependency that admits a request to a dashboard page or action.

    A browser authenticates with the session cookie, and then every request that changes
    something must carry the CSRF token (header `X-CSRF-Token` or form field `csrf`).
    A script may use a bearer token instead, as with the API: no ambient credential,
    so no CSRF token either.
    """

    async def admit(request: Request) -> Caller:
        bearer = bearer_token(request)
        by_cookie = bearer is None
        caller = admit_request(request, action, session_token(request) if by_cookie else bearer)
        if by_cookie and request.method not in SAFE_METHODS and action != Action.PUBLIC:
            await _check_csrf(request)
        return caller

    admit.permission = action  # type: ignore[attr-defined]
    return admit


def start_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


PagePublic = Annotated[Caller, Depends(page_requires(Action.PUBLIC))]
PageReader = Annotated[Caller, Depends(page_requires(Action.MODELS_READ))]
