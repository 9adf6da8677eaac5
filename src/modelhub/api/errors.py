"""The one table from error codes to HTTP statuses, and the handlers that use it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelhub.api.security import record_denial
from modelhub.dashboard.errors import error_page, is_dashboard_request
from modelhub.domain.limits import unencodable_text
from modelhub.errors import (
    ModelhubError,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from modelhub.web.status import HTTP_STATUS

HTTP_CODE_NAMES: dict[int, str] = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "invalid_input",
    409: "conflict",
    413: "payload_too_large",
    415: "invalid_input",
    429: "rate_limited",
}


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    body: dict[str, object] = {
        "error": {"code": code, "message": message, "details": details or {}}
    }
    return {"error": _storable(body["error"])} if unencodable_text(body) else body


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    where = ".".join(str(part) for part in loc if part != "body")
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _storable(value: Any) -> Any:
    """An error may quote hostile input; a lone surrogate in it cannot be sent as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelhubError)
    async def _modelhub_error(request: Request, exc: ModelhubError) -> Response:
        if isinstance(exc, Unauthenticated | PermissionDenied):
            await record_denial(request, exc.message)
        if is_dashboard_request(request):
            return error_page(request, exc.code, exc.message, HTTP_STATUS[exc.code])
        headers = {}
        if isinstance(exc, RateLimited | Unavailable):
            # Unavailable is a 503: say when to try again (a replica loading, a restart).
            headers["retry-after"] = str(max(1, int(exc.details.get("retry_after", 1))))
        body = error_body(exc.code, exc.message, exc.details)
        return JSONResponse(body, HTTP_STATUS[exc.code], headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [_problem(e["loc"], e["msg"]) for e in exc.errors()]
        message = "invalid request: " + "; ".join(problems)
        if is_dashboard_request(request):
            return error_page(request, "invalid_input", message, 400)
        return JSONResponse(error_body("invalid_input", message, {"errors": problems}), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODE_NAMES.get(exc.status_code, "error")
        if is_dashboard_request(request):
            return error_page(request, code, str(exc.detail), exc.status_code)
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)
