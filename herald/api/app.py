"""Herald's HTTP API (FastAPI; OpenAPI at /docs). Errors are always `{"error": {"code", "message", "field"}}`.

Every route but /healthz, the docs, the page (`/`), the VAPID public key and provider callbacks needs a bearer token
(herald/api/auth.py) unless `settings.auth` is off, as in `herald dev`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError

from herald.adapters.channels.push import PushHub
from herald.adapters.channels.redis_push import RedisPushRelay
from herald.adapters.logs import bind, log_scope
from herald.adapters.metrics import HTTP_LATENCY, HTTP_REQUESTS, NOTIFICATIONS_ACCEPTED, exposition
from herald.adapters.store import Store
from herald.api import answers, codec, events, inbox, providers, push, rules, unsubscribe, users, web, ws
from herald.api.auth import AuthError, CallerDep, authorize, current_caller
from herald.api.deps import Deps, Services
from herald.api.errors import ApiError, ErrorBody, allowed_methods, error_response, store_outage, store_unavailable
from herald.api.views import (
    InvalidCursor,
    NotificationPage,
    NotificationView,
    TemporalUnavailable,
    check_visible,
    list_notifications,
    listing_scope,
    load_notification,
    notification_not_found,
)
from herald.config import Settings
from herald.domain.answers import check_respond_by
from herald.domain.validation import describe
from herald.models import ID_REGEX, AgentNotification, NotificationStatus, Priority, utcnow
from herald.models.common import Timestamp
from herald.services.gateway import Connect, Gateway, NotificationIdTaken

NotificationId = Annotated[str, Path(pattern=ID_REGEX, description="the notification's id")]
LIST_LIMIT_MAX = 200
# Seconds a stopping API waits for open requests and WebSockets before it closes them.
API_SHUTDOWN_SECONDS = 5
# Scraped and probed every few seconds: logged at debug, still counted.
QUIET_ROUTES = frozenset({"/metrics", "/healthz"})
# Every body is refused past this size before it is parsed (events have their own, smaller limit).
BODY_LIMIT = 1024 * 1024
CODEC_BODY_LIMIT = 16 * 1024 * 1024  # the Temporal UI sends whole batches of payloads to decode
FASTAPI_BODY_ERROR = "There was an error parsing the body"
UNREADABLE_BODY = "the request body is not readable JSON: it must be UTF-8, and not nested hundreds of levels deep"

request_log = logging.getLogger("herald.api")
INTERNAL_ERROR = "Herald hit an internal error (logged by its type, without the request's data); try again, and report it if it persists"


class RequestLog:
    """Count, time and log every HTTP request by its route template (`/v1/notifications/{notification_id}`).

    Templates, not paths: ids stay out of metric labels, and query strings (`?token=`) out of the log.
    Each request gets its own log context, so lines logged while answering it name its notification.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_status(message)

        with log_scope():
            try:
                await self.app(scope, receive, send_tracking)
            except Exception as exc:  # a bug: answered in the error shape, logged without its message
                # The message and the traceback's locals may hold what the request carried (an address, a
                # token), so the log names only the error's type and where it was raised.
                where = traceback.extract_tb(exc.__traceback__)[-1]
                request_log.error(
                    "unhandled %s at %s:%d in %s",
                    type(exc).__name__,
                    os.path.basename(where.filename),
                    where.lineno or 0,
                    where.name,
                )
                if started_response:
                    raise
                status = 500
                await error_response(500, "internal_error", INTERNAL_ERROR)(scope, receive, send)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = str(scope.get("method", ""))
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_LATENCY.labels(method, route).observe(elapsed)
                request_log.log(
                    logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 1)},
                )


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def depends_on(dependant: Dependant | Callable[..., Any], call: object) -> bool:
    """Whether `call` is among a route's (or a dependency's) dependencies, however deep."""
    if not isinstance(dependant, Dependant):
        dependant = get_dependant(path="", call=dependant)
    return dependant.call is call or any(depends_on(d, call) for d in dependant.dependencies)


def document_errors(routes: Sequence[BaseRoute], router_dependencies: Sequence[Any] = ()) -> None:
    """List in each operation the refusals it can answer, so the published schema names every status:
    400 and 413 wherever a body is read (the body guard: not UTF-8, too large), 401 and 403 wherever a
    caller is identified and authorized. Included routers are walked, with their own dependencies."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            document_errors(included.routes, [*router_dependencies, *included.dependencies])
            continue
        if not isinstance(route, APIRoute):
            continue
        statuses: list[int] = []
        if (route.methods or set()) & BODY_METHODS:
            statuses += [400, 413]
        authorized = any(depends_on(d.dependency, current_caller) for d in router_dependencies if d.dependency)
        if authorized or depends_on(route.dependant, current_caller):
            statuses += [401, 403]
        for status in statuses:
            route.responses.setdefault(status, {"model": ErrorBody})


class NotificationAccepted(BaseModel):
    notification_id: str
    workflow_id: str
    status_url: str


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    client: Gateway | None = None,
    connect: Connect | None = None,
    hub: PushHub | None = None,
) -> FastAPI:
    """The API. It reaches Temporal only through a Gateway: `herald dev` hands in its store, HeraldClient and
    push hub; `herald api` hands in `connect` (HeraldClient.connect), called on the first request that needs
    Temporal. With neither, those requests answer 503 `temporal_unavailable`."""
    settings = settings or Settings()
    services = Services(settings, store, client, hub, connect=connect)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned = services._store is None
        if owned:
            services._store = await Store.open(settings.resolved_database_url)
        relay = None
        try:
            if settings.redis.redis_url:
                # Workers in other processes reach this process's WebSockets through Redis pub/sub.
                relay = RedisPushRelay(services.hub, settings.redis.redis_url)
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
    app.add_middleware(
        events.BodyLimit,
        limits={events.EVENTS_PATH: events.EVENT_BODY_LIMIT, "/codec/": CODEC_BODY_LIMIT},
        default=BODY_LIMIT,
        raw_prefixes=("/codec/",),
    )
    app.add_middleware(RequestLog)

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
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.field)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(AuthError)
    async def _auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.field)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def _store_down(_request: Request, exc: Exception) -> JSONResponse:
        """A database outage is a 503 the client can retry; any other error stays a 500."""
        if store_outage(exc):
            request_log.warning("store unavailable (%s)", type(exc).__name__)
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

    auth_errors: dict[int | str, dict[str, object]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}

    @app.post(
        "/v1/notifications",
        status_code=202,
        response_model=NotificationAccepted,
        tags=["notifications"],
        responses={**auth_errors, 409: {"model": ErrorBody}},
    )
    async def send_notification(notification: AgentNotification, caller: CallerDep, deps: Deps) -> NotificationAccepted:
        """Start a notification (an agent key sends as its own agent only). The same notification_id again is a no-op;
        another agent's notification_id is a 409."""
        authorize(caller, agents=[notification.agent_id], field="agent_id")
        bind(notification_id=notification.notification_id)
        try:
            check_respond_by(notification, utcnow())
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"respond_by: {exc}", "respond_by") from None
        herald = await deps.client()
        try:
            handle = await herald.notify(notification)
        except NotificationIdTaken as exc:
            raise ApiError(409, "notification_id_taken", str(exc), "notification_id") from None
        except RPCError as exc:
            raise ApiError(503, "temporal_unavailable", "Temporal refused the start; retry with the same id") from exc
        NOTIFICATIONS_ACCEPTED.inc()
        return NotificationAccepted(
            notification_id=handle.notification_id,
            workflow_id=handle.workflow_id,
            status_url=f"/v1/notifications/{handle.notification_id}",
        )

    @app.get(
        "/v1/notifications/{notification_id}",
        response_model=NotificationView,
        tags=["notifications"],
        responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}},
    )
    async def get_notification(notification_id: NotificationId, caller: CallerDep, deps: Deps) -> NotificationView:
        """Status, per-channel state and every delivery attempt: for its user, its sending agent, or the admin.
        Anyone else gets the 404 an unknown id gets, so status calls can't probe which ids exist."""
        bind(notification_id=notification_id)
        try:
            view = await load_notification(deps.store, await deps.client(), notification_id)
        except TemporalUnavailable as exc:
            raise ApiError(503, "temporal_unavailable", str(exc)) from exc
        if view is None:
            raise notification_not_found(notification_id)
        check_visible(caller, notification_id, view.user_id, view.agent_id)
        return view

    @app.get(
        "/v1/notifications",
        response_model=NotificationPage,
        tags=["notifications"],
        responses=auth_errors,
    )
    async def list_recorded_notifications(
        caller: CallerDep,
        deps: Deps,
        user_id: Annotated[
            str | None, Query(pattern=ID_REGEX, description="a user token lists its own user only (the default)")
        ] = None,
        agent_id: Annotated[
            str | None, Query(pattern=ID_REGEX, description="an agent key lists its own agent only (the default)")
        ] = None,
        status: NotificationStatus | None = None,
        priority: Priority | None = None,
        since: Annotated[Timestamp | None, Query(description="recorded at or after this time (ISO 8601)")] = None,
        limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 50,
        cursor: Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")] = None,
    ) -> NotificationPage:
        """Finished notifications, newest first, from the audit record (no attempts: GET one for those).

        The admin sees all; a user token only its own user's (no `user_id` means its own; another's is a 403);
        an agent key only what its agent sent, by `agent_id` likewise. Page with `next_cursor`.
        """
        user_id, agent_id = listing_scope(caller, user_id, agent_id)
        try:
            return await list_notifications(
                deps.store,
                user_id=user_id,
                agent_id=agent_id,
                status=status,
                priority=priority,
                since=since,
                cursor=cursor,
                limit=limit,
            )
        except InvalidCursor as exc:
            raise ApiError(422, "invalid_request", f"cursor: {exc}", "cursor") from None

    app.include_router(users.router)
    app.include_router(push.router)
    app.include_router(rules.router)
    app.include_router(events.router)
    app.include_router(providers.router)
    app.include_router(answers.router)
    app.include_router(unsubscribe.router)
    app.include_router(ws.router)
    app.include_router(codec.codec_router(settings))
    app.include_router(inbox.router)
    app.include_router(web.router)
    document_errors(app.routes)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text exposition of this API process's metrics (requests, events, notifications accepted)."""
        body, content_type = exposition()
        return Response(body, media_type=content_type)

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
            await herald.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:
            checks["temporal"] = f"down ({type(exc).__name__})"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)

    return app
