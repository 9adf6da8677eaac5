"""The one table from error codes to HTTP statuses, and the handlers that use it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelhub.api.security import record_denial
from modelhub.api.status import HTTP_STATUS
from modelhub.errors import (
    ModelhubError,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

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
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelhubError)
    async def _modelhub_error(request: Request, exc: ModelhubError) -> JSONResponse:
        if isinstance(exc, Unauthenticated | PermissionDenied):
            await record_denial(request, exc.message)
        headers = {}
        if isinstance(exc, RateLimited | Unavailable):
            # Unavailable is a 503: say when to try again (a replica loading, a restart).
            headers["retry-after"] = str(max(1, int(exc.details.get("retry_after", 1))))
        body = error_body(exc.code, exc.message, exc.details)
        return JSONResponse(body, HTTP_STATUS[exc.code], headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        ]
        message = "invalid request: " + "; ".join(problems)
        return JSONResponse(error_body("invalid_input", message, {"errors": problems}), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODE_NAMES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)
