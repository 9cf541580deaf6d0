"""The one error shape every route answers with: `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.routing import Match, Route


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers: dict[str, str] = dict(headers or {})


# How long a client should wait before it sends a request again that Temporal could not serve.
TEMPORAL_RETRY_AFTER_SECONDS = 5


def temporal_unavailable(message: str) -> ApiError:
    """503 `temporal_unavailable` with Retry-After: Temporal (or every worker) did not answer in time; nothing was
    refused, so the same request again may well work."""
    return ApiError(503, "temporal_unavailable", message, headers={"Retry-After": str(TEMPORAL_RETRY_AFTER_SECONDS)})


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(status: int, code: str, message: str, field: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field, **extra}}, status_code=status)


def allowed_methods(request: Request) -> str:
    """`Allow` for a 405: every method some route on this path takes (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


# SQLSTATE classes of a database that is down or restarting: 08 connection exceptions, 57P01-57P03 shutdowns.
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def store_outage(exc: BaseException) -> bool:
    """The database is down, restarting or unreachable (worth a 503 and a retry), rather than a bug (a 500)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    return (
        exc.connection_invalidated
        or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
        or sqlstate.startswith(_OUTAGE_SQLSTATES)
    )


def store_unavailable() -> JSONResponse:
    """503 in the error shape, with Retry-After: the database may be back by then; send the same request again."""
    response = error_response(503, "store_unavailable", "the database is unavailable; retry the request shortly")
    response.headers["Retry-After"] = "2"
    return response
