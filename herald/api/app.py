"""Herald's HTTP API (FastAPI; OpenAPI at /docs). Errors are always `{"error": {"code", "message", "field"}}`.

Every route but /healthz, the docs, the page (`/`), the VAPID public key and provider callbacks needs a bearer token
(herald/api/auth.py) unless `settings.auth` is off, as in `herald dev`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import BaseRoute

from herald.adapters.channels.push import PushHub
from herald.adapters.channels.redis_push import RedisPushRelay
from herald.adapters.store import Store
from herald.api import (
    answers,
    chat_answers,
    codec,
    events,
    groups,
    heartbeats,
    inbox,
    notifications,
    oncall,
    ops,
    providers,
    push,
    rules,
    silences,
    subscriptions,
    unsubscribe,
    users,
    web,
    ws,
)
from herald.api.auth import current_caller
from herald.api.deps import Services
from herald.api.errors import ErrorBody
from herald.api.handlers import install_error_handlers
from herald.api.request_log import RequestLog
from herald.config import Settings
from herald.services.gateway import Connect, Gateway
from herald.services.quota import AgentQuota

# Seconds a stopping API waits for open requests and WebSockets before it closes them.
API_SHUTDOWN_SECONDS = 5
# Every body is refused past this size before it is parsed (events have their own, smaller limit).
BODY_LIMIT = 1024 * 1024
CODEC_BODY_LIMIT = 16 * 1024 * 1024  # the Temporal UI sends whole batches of payloads to decode


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


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    client: Gateway | None = None,
    connect: Connect | None = None,
    hub: PushHub | None = None,
    quota: AgentQuota | None = None,
) -> FastAPI:
    """The API. It reaches Temporal only through a Gateway: `herald dev` hands in its store, HeraldClient and
    push hub; `herald api` hands in `connect` (HeraldClient.connect), called on the first request that needs
    Temporal. With neither, those requests answer 503 `temporal_unavailable`. `quota` holds the agent keys'
    buckets (default: from the settings, in Redis when HERALD_REDIS_URL is set)."""
    settings = settings or Settings()
    services = Services(settings, store, client, hub, connect=connect, quota=quota)

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
            await services.quota.aclose()
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

    install_error_handlers(app)
    app.include_router(notifications.router)
    app.include_router(users.router)
    app.include_router(push.router)
    app.include_router(rules.router)
    app.include_router(silences.router)
    app.include_router(subscriptions.router)
    app.include_router(groups.router)
    app.include_router(oncall.router)
    app.include_router(events.router)
    app.include_router(heartbeats.router)
    app.include_router(providers.router)
    app.include_router(chat_answers.router)
    app.include_router(answers.router)
    app.include_router(unsubscribe.router)
    app.include_router(ws.router)
    app.include_router(codec.codec_router(settings))
    app.include_router(inbox.router)
    app.include_router(web.router)
    document_errors(app.routes)
    app.include_router(ops.router)  # after document_errors: probes take no token and no body

    return app
