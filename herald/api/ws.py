"""`GET /v1/ws`: a user's live connection. Frames go out as `{"type": "notification", ...}`; the client acks.

Protocol, server to client: `{"type": "ready", "user_id", "connection_id"}` once frames can reach this socket,
then `{"type": "notification", ...}` frames, `{"type": "resolved", "notification_id"}` when its agent resolved one
(acked like a notification frame), `{"type": "pong"}` and `{"type": "error", "message"}`.
Client to server: `{"type": "ack", "notification_id"}` (delivery counts only once acked) and `{"type": "ping"}`;
`{"type": "respond", "notification_id", "action_id"}` (and `"text"`, the person's words, for an action with
`input: text`) answers a question as the token's user, and the server
replies `{"type": "response", "notification_id", "action_id", "accepted", ...}` (`answer`, or `code` and `reason`);
another user's notification gets the reply an unknown id gets (`not_found`), as on the HTTP route.

A bad or missing token is answered by accepting and then closing with 1008 (policy violation): refusing the
handshake would show browsers only 1006, with no way to tell "log in again" from "server down".
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from temporalio.service import RPCError

from herald.adapters.channels.push import PushConnection
from herald.api.answers import answer_as
from herald.api.auth import Caller
from herald.api.deps import Services
from herald.api.errors import ApiError
from herald.api.views import notification_not_found
from herald.models import ACTION_ID_REGEX, ID_REGEX, AnswerChannel
from herald.services.auth import resolve_token
from herald.services.gateway import AnswerRefused

router = APIRouter(tags=["push"])

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
_ID = re.compile(ID_REGEX)
_ACTION_ID = re.compile(ACTION_ID_REGEX)

Send = Callable[[dict[str, Any]], Awaitable[None]]

_TOKEN_PARAM = re.compile(r"((?:^|[?&])token=)[^&\s\"']*")


def redact_query_token(text: str) -> str:
    """`/v1/ws?token=hrt_...` -> `/v1/ws?token=[redacted]`: a token in a log is a leaked token."""
    return _TOKEN_PARAM.sub(r"\1[redacted]", text)


class RedactQueryToken(logging.Filter):
    """uvicorn logs every WebSocket's path with its query string ("WebSocket /v1/ws?token=..." [accepted])."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query_token(a) if isinstance(a, str) else a for a in record.args)
        return True


# The WebSocket protocols log on this logger directly, so a filter here sees each of their lines.
logging.getLogger("uvicorn.error").addFilter(RedactQueryToken())


def bearer_token(query_token: str | None, authorization: str | None) -> str | None:
    """The token from `Authorization: Bearer`, else from `?token=` (browsers cannot set headers on a WebSocket)."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return query_token or None


@dataclass(frozen=True)
class ClientMessage:
    type: Literal["ack", "ping", "respond"]
    notification_id: str | None = None
    action_id: str | None = None
    text: str | None = None  # respond: the person's words, for an action answered in words


class MalformedMessage(ValueError):
    """A client message we cannot act on. The text is safe to send back: it never quotes the input."""


def parse_client_message(raw: str | bytes) -> ClientMessage:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise MalformedMessage("not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedMessage("expected a JSON object with a `type`")
    kind = value.get("type")
    if kind == "ping":
        return ClientMessage("ping")
    if kind == "ack":
        notification_id = value.get("notification_id")
        if not isinstance(notification_id, str) or not _ID.fullmatch(notification_id):
            raise MalformedMessage("notification_id: required, the id of the notification being acked")
        return ClientMessage("ack", notification_id)
    if kind == "respond":
        notification_id, action_id = value.get("notification_id"), value.get("action_id")
        if not isinstance(notification_id, str) or not _ID.fullmatch(notification_id):
            raise MalformedMessage("notification_id: required, the id of the notification being answered")
        if not isinstance(action_id, str) or not _ACTION_ID.fullmatch(action_id):
            raise MalformedMessage("action_id: required, one of the notification's action ids (or ack, snooze)")
        text = value.get("text")
        if text is not None and not isinstance(text, str):
            raise MalformedMessage("text: must be a string, the answer's words (for an action with input text)")
        return ClientMessage("respond", notification_id, action_id, text)
    raise MalformedMessage("type: must be `ack`, `respond` or `ping`")


@router.websocket("/v1/ws")
async def push_socket(websocket: WebSocket) -> None:
    """Authenticate with a user token, then receive that user's notifications and ack each one."""
    services: Services = websocket.app.state.services
    token = bearer_token(websocket.query_params.get("token"), websocket.headers.get("authorization"))
    try:
        store = services.store
    except ApiError:
        await websocket.accept()
        await websocket.close(TRY_AGAIN_LATER, "the store is not open yet; retry shortly")
        return
    principal = await resolve_token(store, token) if token else None
    await websocket.accept()
    if token is None:
        await websocket.close(POLICY_VIOLATION, "a user token is required: ?token= or Authorization: Bearer")
        return
    if principal is None:
        await websocket.close(POLICY_VIOLATION, "unknown token")
        return
    if principal.kind != "user":
        await websocket.close(POLICY_VIOLATION, "a user token is required (herald tokens issue <user>)")
        return

    connection = services.hub.connect(principal.subject)
    try:
        try:
            await connection.registered()
        except OSError:
            await websocket.close(TRY_AGAIN_LATER, "push relay unavailable; retry shortly")
            return
        await websocket.send_json({"type": "ready", "user_id": connection.user_id, "connection_id": connection.id})
        await _serve(websocket, connection)
    finally:
        connection.close()


async def _serve(websocket: WebSocket, connection: PushConnection) -> None:
    """Send frames and read client messages at once; either side ending (a disconnect) ends both."""
    lock = asyncio.Lock()

    async def send(data: dict[str, Any]) -> None:
        async with lock:  # frames and replies come from two tasks; one send at a time
            await websocket.send_json(data)

    tasks = {
        asyncio.create_task(_send_frames(connection, send)),
        asyncio.create_task(_receive(websocket, connection, send)),
    }
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        error = None if task.cancelled() else task.exception()
        # The client going away shows up as a disconnect on either side; anything else is a bug to see.
        if error is not None and not isinstance(error, WebSocketDisconnect | OSError):
            raise error


async def _send_frames(connection: PushConnection, send: Send) -> None:
    while True:
        await send(await connection.receive())


async def _receive(websocket: WebSocket, connection: PushConnection, send: Send) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        try:
            parsed = parse_client_message(raw)
        except MalformedMessage as exc:
            await send({"type": "error", "message": str(exc)})
            continue
        if parsed.type == "ping":
            await send({"type": "pong"})
        elif parsed.type == "respond":
            await send(await _respond(websocket.app.state.services, connection.user_id, parsed))
        elif parsed.notification_id is not None:
            # A late or repeated ack finds nobody waiting; that is fine and needs no answer.
            connection.ack(parsed.notification_id)


async def _respond(services: Services, user_id: str, message: ClientMessage) -> dict[str, Any]:
    """Answer as the socket's user (the token said who), authorized as `POST /v1/notifications/{id}/respond` is:
    another user's notification gets the reply an unknown id gets, and nothing about it (no action ids) and
    nothing is kept. The reply says whether the answer was taken, and why not."""
    assert message.notification_id is not None and message.action_id is not None
    reply: dict[str, Any] = {
        "type": "response",
        "notification_id": message.notification_id,
        "action_id": message.action_id,
    }
    try:
        answer = await answer_as(
            services,
            Caller("user", user_id),
            message.notification_id,
            message.action_id,
            AnswerChannel.push,
            message.text,
        )
    except AnswerRefused as exc:
        if exc.code == "not_found":
            exc = AnswerRefused("not_found", notification_not_found(message.notification_id).message)
        return {**reply, "accepted": False, "code": exc.code, "reason": exc.reason}
    except ApiError as exc:  # unknown or someone else's (404), Temporal or the store unavailable (503)
        return {**reply, "accepted": False, "code": exc.code, "reason": exc.message}
    except RPCError:
        return {**reply, "accepted": False, "code": "temporal_unavailable", "reason": "try again shortly"}
    return {**reply, "accepted": True, "answer": answer.model_dump(mode="json")}
