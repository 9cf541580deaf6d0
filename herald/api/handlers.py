"""How the API answers what it refuses: every error in the one shape `{"error": {"code", "message", "field"}}`,
FastAPI's validation errors and Starlette's 404/405 included."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from herald.api.auth import AuthError
from herald.api.errors import ApiError, allowed_methods, error_response, store_outage, store_unavailable
from herald.domain.validation import describe

log = logging.getLogger("herald.api")
FASTAPI_BODY_ERROR = "There was an error parsing the body"
UNREADABLE_BODY = "the request body is not readable JSON: it must be UTF-8, and not nested hundreds of levels deep"


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal in the one shape `{"error": {"code", "message", "field"}}`, FastAPI's and Starlette's too."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = describe(exc.errors(), request=True)
        first = problems[0]
        return error_response(
            422,
            "invalid_request",
            str(first),
            first.field,
            details=[{"field": p.field, "message": p.message} for p in problems],
        )

    @app.exception_handler(ApiError)
    @app.exception_handler(AuthError)
    async def _refused(_request: Request, exc: ApiError | AuthError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.field)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def _store_down(_request: Request, exc: Exception) -> JSONResponse:
        """A database outage is a 503 the client can retry; any other error stays a 500."""
        if store_outage(exc):
            log.warning("store unavailable (%s)", type(exc).__name__)
            return store_unavailable()
        raise exc

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code, message = codes.get(exc.status_code, "http_error"), str(exc.detail)
        if exc.status_code == 400 and message == FASTAPI_BODY_ERROR:
            # FastAPI's answer to a body json.loads could not read at all (not UTF-8, or nested past recursion).
            code, message = "invalid_request", UNREADABLE_BODY
        response = error_response(exc.status_code, code, message)
        # A 405 carries `Allow` (RFC 9110): the client learns which methods the path takes.
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response
