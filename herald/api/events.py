"""`POST /v1/events`: an agent's metrics, checked against the trigger rules; matches become notifications.

An event that matches no rule is answered from the in-process rule cache alone: no Temporal round trip,
not even a connection, so agents can report every few seconds and only what matters costs anything.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from herald.adapters.metrics import EVENTS_FIRED, EVENTS_RECEIVED
from herald.api.auth import CallerDep, authorize
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody
from herald.api.guard import body_problem
from herald.api.quota import RATE_LIMITED, spend
from herald.domain.events import clearing_rules, match_event
from herald.models import AgentEvent, EmitResult
from herald.services.gateway import Gateway
from herald.services.rule_cache import RuleCache

router = APIRouter(tags=["events"])

EVENTS_PATH = "/v1/events"
EVENT_BODY_LIMIT = 64 * 1024


async def emit_event(
    event: AgentEvent,
    rules: RuleCache,
    client: Callable[[], Awaitable[Gateway]],
    before_firing: Callable[[], Awaitable[None]] | None = None,
) -> EmitResult:
    """Emit through Temporal only when some rule matches or clears; `client` is called (and connects) only then,
    after `before_firing` (the agent key's quota: an event that fires nothing costs no token)."""
    book = await rules.book()
    firings, clearing = match_event(book, event), clearing_rules(book, event)
    if not firings and not clearing:
        return EmitResult(event_id=event.event_id)
    if before_firing is not None:
        await before_firing()
    return await (await client()).fire(event, firings, clearing)


@router.post(
    EVENTS_PATH,
    status_code=202,
    response_model=EmitResult,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 413: {"model": ErrorBody}, **RATE_LIMITED},
)
async def post_event(event: AgentEvent, caller: CallerDep, deps: Deps) -> EmitResult:
    """Check the metrics against the rules: `fired` lists notifications started, `cooled_down` matches held back.

    Send the same `event_id` again to retry safely: it fires at most once. Bodies are limited to 64 KB. An event
    that matches a rule takes a token from the agent key's quota (one that matches none is free); over it, a 429
    with Retry-After, and nothing fires.
    """
    authorize(caller, agents=[event.agent_id], field="agent_id")

    async def quota() -> None:
        await spend(deps, caller)

    try:
        result = await emit_event(event, deps.rules, deps.client, quota)
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        # Safe to retry: the event id names the notifications and the monitor's update, so nothing fires twice.
        raise ApiError(
            503, "temporal_unavailable", "Temporal did not take the event; retry with the same event_id"
        ) from exc
    EVENTS_RECEIVED.inc()
    EVENTS_FIRED.inc(sum(len(fired.notification_ids) for fired in result.fired))
    return result


class BodyLimit:
    """Refuse request bodies over a limit with 413, before anything parses them.

    `limits` maps a path to its limit, or a prefix ending in `/` to the limit of every path under it; other
    paths get `default` (None: unlimited). Content-Length is checked first; the body actually sent is counted
    too (chunked uploads, lying headers), buffered up to the limit and replayed to the app.
    """

    def __init__(
        self, app: ASGIApp, limits: Mapping[str, int], default: int | None = None, raw_prefixes: tuple[str, ...] = ()
    ) -> None:
        # Under `raw_prefixes` the route judges its body's text itself (the codec answers in its own protocol).
        self.app, self.limits, self.default, self.raw_prefixes = app, dict(limits), default, raw_prefixes

    def limit_for(self, path: str) -> int | None:
        if path in self.limits:
            return self.limits[path]
        prefixes = [prefix for prefix in self.limits if prefix.endswith("/") and path.startswith(prefix)]
        return self.limits[max(prefixes, key=len)] if prefixes else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
        raw = scope.get("path", "").startswith(self.raw_prefixes) if self.raw_prefixes else False
        problem = None if raw else body_problem(body, content_type)
        if problem is not None:
            await _refuse(send, problem.status, "invalid_request", problem.message, problem.field)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    message = f"the request body is over the limit of {limit // 1024} KB ({limit} bytes)"
    await _refuse(send, 413, "payload_too_large", message, None)


async def _refuse(send: Send, status: int, code: str, message: str, field: str | None) -> None:
    payload: dict[str, Any] = {"error": {"code": code, "message": message, "field": field}}
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
