"""Herald's HTTP API (FastAPI; OpenAPI at /docs). Errors are always `{"error": {"code", "message", "field"}}`.

Every route but /healthz, the docs, the VAPID public key and provider callbacks needs a bearer token
(herald/api/auth.py) unless `settings.auth` is off, as in `herald dev`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from herald.api import events, providers, push, rules, users, ws
from herald.api.auth import AuthError, CallerDep, authorize
from herald.api.deps import Deps, Services
from herald.api.errors import ApiError, ErrorBody, error_response
from herald.api.views import NotificationView, TemporalUnavailable, load_notification
from herald.channels.push import PushHub
from herald.channels.redis_push import RedisPushRelay
from herald.config import Settings
from herald.models import ID_REGEX, AgentNotification
from herald.store import Store
from herald.validation import describe
from starter.client import HeraldClient

NotificationId = Annotated[str, Path(pattern=ID_REGEX, description="the notification's id")]


class NotificationAccepted(BaseModel):
    notification_id: str
    workflow_id: str
    status_url: str


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    client: HeraldClient | None = None,
    hub: PushHub | None = None,
) -> FastAPI:
    """The API. `herald dev` hands in its store, client and push hub; `herald api` lets the app open its own."""
    settings = settings or Settings()
    services = Services(settings, store, client, hub)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned = services._store is None
        if owned:
            services._store = await Store.open(settings.resolved_database_url)
        relay = None
        try:
            if settings.redis_url:
                # Workers in other processes reach this process's WebSockets through Redis pub/sub.
                relay = RedisPushRelay(services.hub, settings.redis_url)
                await relay.start()
            yield
        finally:
            if relay is not None:
                await relay.stop()
            if owned and services._store is not None:
                await services._store.close()

    app = FastAPI(
        title="Herald",
        version="0.1.0",
        description="Durable notifications from AI agents to people.",
        lifespan=lifespan,
        responses={422: {"model": ErrorBody}, 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    )
    app.state.services = services
    app.add_middleware(events.BodyLimit, limits={events.EVENTS_PATH: events.EVENT_BODY_LIMIT})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = describe(exc.errors())
        first = problems[0]
        return error_response(
            422,
            "invalid_request",
            str(first),
            first.field,
            details=[{"field": p.field, "message": p.message} for p in problems],
        )

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(AuthError)
    async def _auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.field)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    auth_errors: dict[int | str, dict[str, object]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}

    @app.post(
        "/v1/notifications",
        status_code=202,
        response_model=NotificationAccepted,
        tags=["notifications"],
        responses=auth_errors,
    )
    async def send_notification(notification: AgentNotification, caller: CallerDep, deps: Deps) -> NotificationAccepted:
        """Start a notification (an agent key sends as its own agent only). The same notification_id again is a no-op."""
        authorize(caller, agents=[notification.agent_id], field="agent_id")
        herald = await deps.client()
        try:
            handle = await herald.notify(notification)
        except RPCError as exc:
            raise ApiError(503, "temporal_unavailable", "Temporal refused the start; retry with the same id") from exc
        return NotificationAccepted(
            notification_id=handle.notification_id,
            workflow_id=handle.workflow_id,
            status_url=f"/v1/notifications/{handle.notification_id}",
        )

    @app.get(
        "/v1/notifications/{notification_id}",
        response_model=NotificationView,
        tags=["notifications"],
        responses=auth_errors,
    )
    async def get_notification(notification_id: NotificationId, caller: CallerDep, deps: Deps) -> NotificationView:
        """Status, per-channel state and every delivery attempt: for its user, its sending agent, or the admin."""
        try:
            view = await load_notification(deps.store, await deps.client(), notification_id)
        except TemporalUnavailable as exc:
            raise ApiError(503, "temporal_unavailable", str(exc)) from exc
        if view is None:
            raise ApiError(404, "not_found", f"no notification {notification_id}", "notification_id")
        authorize(caller, users=[view.user_id], agents=[view.agent_id], field="notification_id")
        return view

    app.include_router(users.router)
    app.include_router(push.router)
    app.include_router(rules.router)
    app.include_router(events.router)
    app.include_router(providers.router)
    app.include_router(ws.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz(deps: Deps) -> JSONResponse:
        """200 when the store and Temporal both answer, else 503 naming what is down."""
        checks: dict[str, str] = {}
        try:
            await deps.store.ping()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"down ({type(exc).__name__})"
        try:
            herald = await deps.client()
            await herald.temporal.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:
            checks["temporal"] = f"down ({type(exc).__name__})"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)

    return app
