"""`GET /v1/ws` served by uvicorn on loopback, driven with the `websockets` client, the in-process hub behind it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from herald.adapters.channels.push import PushHub
from herald.adapters.store import Store
from herald.api.app import create_app
from herald.api.ws import MalformedMessage, bearer_token, parse_client_message, redact_query_token
from herald.domain.errors import PushNotAcked, RecipientNotConnected
from herald.services.auth import issue_token
from tests.conftest import make_settings


@contextlib.asynccontextmanager
async def serve(app: FastAPI, *, lifespan: str = "off", log_level: str = "warning") -> AsyncIterator[int]:
    """Serve `app` on a free loopback port (with its lifespan when asked) and yield the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan=lifespan))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise AssertionError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), 5)
    value: dict[str, Any] = json.loads(message)
    return value


async def wait_until_disconnected(hub: PushHub, user_id: str) -> None:
    for _ in range(500):
        if not hub.connected(user_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the hub still lists the user's connection")


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None, "the server closed without a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


class Api:
    def __init__(self, port: int, hub: PushHub) -> None:
        self.port, self.hub = port, hub

    def url(self, token: str | None = None) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws" + (f"?token={token}" if token else "")


@pytest.fixture
async def api(tmp_path: Path, store: Store) -> AsyncIterator[Api]:
    hub = PushHub(ack_timeout=0.3, queue_size=1)
    app = create_app(make_settings(tmp_path), store=store, hub=hub)
    async with serve(app) as port:
        yield Api(port, hub)


FRAME = {"type": "notification", "notification_id": "n-1", "title": "Deploy finished"}


# --- pure ------------------------------------------------------------------------------------------------


def test_bearer_token_prefers_the_header_and_falls_back_to_the_query() -> None:
    assert bearer_token("hrt_q", "Bearer hrt_h") == "hrt_h"
    assert bearer_token("hrt_q", "bearer  hrt_h ") == "hrt_h"
    assert bearer_token("hrt_q", None) == "hrt_q"
    assert bearer_token("hrt_q", "Basic abc") == "hrt_q"
    assert bearer_token(None, "Bearer ") is None
    assert bearer_token("", None) is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{not json", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"type": "hello"}', "type: must be"),
        ('{"type": "ack"}', "notification_id: required"),
        ('{"type": "ack", "notification_id": 3}', "notification_id: required"),
        ('{"type": "ack", "notification_id": "bad id\\n"}', "notification_id: required"),
    ],
)
def test_malformed_client_messages_are_named_without_quoting_them(raw: str | bytes, problem: str) -> None:
    with pytest.raises(MalformedMessage, match=problem) as info:
        parse_client_message(raw)
    assert "hello" not in str(info.value) and "bad id" not in str(info.value)


def test_client_messages_parse() -> None:
    assert parse_client_message('{"type": "ping"}').type == "ping"
    ack = parse_client_message(b'{"type": "ack", "notification_id": "n-1"}')
    assert (ack.type, ack.notification_id) == ("ack", "n-1")


# --- authentication --------------------------------------------------------------------------------------


async def test_no_token_unknown_token_and_agent_key_are_closed_with_1008(api: Api, store: Store) -> None:
    agent_key = await issue_token(store, "agent", "deploy-bot")
    for url, headers in [
        (api.url(), {}),
        (api.url("hrt_never-issued"), {}),
        (api.url(), {"Authorization": "Bearer hrt_never-issued"}),
        (api.url(agent_key), {}),
        (api.url(), {"Authorization": f"Bearer {agent_key}"}),
    ]:
        async with connect(url, additional_headers=headers) as ws:
            code, reason = await closed_with(ws)
        assert code == 1008, (url, headers)
        assert "hrt_" not in reason and "hrk_" not in reason, "the close reason never echoes a token"
    assert api.hub.users() == []


async def test_user_token_in_the_query_and_in_the_header_gets_ready(api: Api, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(api.url(token)) as ws:
        ready = await recv_json(ws)
        assert ready["type"] == "ready" and ready["user_id"] == "ada"
        assert ready["connection_id"]
        assert api.hub.connected("ada")
    async with connect(api.url(), additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        second = await recv_json(ws)
        assert second["type"] == "ready" and second["user_id"] == "ada"
        assert second["connection_id"] != ready["connection_id"]


def test_redact_query_token() -> None:
    assert redact_query_token("/v1/ws?token=hrt_a-b_c") == "/v1/ws?token=[redacted]"
    assert redact_query_token("/v1/ws?x=1&token=hrt_a&y=2") == "/v1/ws?x=1&token=[redacted]&y=2"
    assert redact_query_token("/v1/ws?notoken=1") == "/v1/ws?notoken=1"


async def test_the_server_log_never_shows_the_query_token(tmp_path: Path, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    uvicorn_log = logging.getLogger("uvicorn.error")
    app = create_app(make_settings(tmp_path), store=store, hub=PushHub())
    async with serve(app, log_level="info") as port:
        uvicorn_log.addHandler(handler)  # after uvicorn's own logging setup, which replaces handlers
        try:
            async with connect(f"ws://127.0.0.1:{port}/v1/ws?token={token}") as ws:
                await recv_json(ws)
        finally:
            uvicorn_log.removeHandler(handler)
    assert any("/v1/ws?token=[redacted]" in line for line in lines), lines
    assert not any(token in line for line in lines)


# --- frames and acks -------------------------------------------------------------------------------------


async def test_frame_is_delivered_and_the_ack_returns_the_connection_id(api: Api, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(api.url(token)) as ws:
        ready = await recv_json(ws)
        publish = asyncio.create_task(api.hub.publish("ada", "n-1", FRAME))
        assert await recv_json(ws) == FRAME
        await ws.send(json.dumps({"type": "ack", "notification_id": "n-1"}))
        assert await publish == ready["connection_id"]


async def test_no_ack_is_push_not_acked(api: Api, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(api.url(token)) as ws:
        await recv_json(ws)
        publish = asyncio.create_task(api.hub.publish("ada", "n-1", FRAME))
        assert await recv_json(ws) == FRAME, "the client got the frame and chose not to ack it"
        with pytest.raises(PushNotAcked, match="no ack"):
            await publish
        # A late ack resolves nothing and does not close the connection.
        await ws.send(json.dumps({"type": "ack", "notification_id": "n-1"}))
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}


async def test_nobody_connected_is_recipient_not_connected(api: Api) -> None:
    with pytest.raises(RecipientNotConnected):
        await api.hub.publish("ada", "n-1", FRAME)


async def test_a_client_that_stops_reading_fills_its_queue_and_the_frame_is_not_offered(api: Api, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    big = {"type": "notification", "notification_id": "filler", "body": "x" * 1_000_000}
    # max_queue=1: the client library stops reading the socket, so the server's sends block on backpressure;
    # without compression, so a megabyte of `x` stays a megabyte on the wire. Closing won't wait for the backlog.
    async with connect(api.url(token), max_size=None, max_queue=1, compression=None, close_timeout=0.1) as ws:
        await recv_json(ws)
        for _ in range(500):  # until the sender is stuck and the one-frame queue behind it is full
            if api.hub.offer("ada", big) == 0:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the send queue never filled")
        with pytest.raises(PushNotAcked, match="full send queue"):
            await api.hub.publish("ada", "n-1", FRAME)


async def test_ping_pong_and_malformed_messages_keep_the_connection(api: Api, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(api.url(token)) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}
        bad_messages: list[str | bytes] = ["{not json", '{"type": "ack"}', '{"type": "subscribe"}', b"\x00binary"]
        for bad in bad_messages:
            await ws.send(bad)
            reply = await recv_json(ws)
            assert reply["type"] == "error" and reply["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}, "still up after malformed messages"
        publish = asyncio.create_task(api.hub.publish("ada", "n-2", {**FRAME, "notification_id": "n-2"}))
        assert (await recv_json(ws))["notification_id"] == "n-2"
        await ws.send(json.dumps({"type": "ack", "notification_id": "n-2"}))
        assert await publish


async def test_disconnect_unregisters_the_connection(api: Api, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(api.url(token)) as ws:
        await recv_json(ws)
        assert api.hub.connected("ada")
    await wait_until_disconnected(api.hub, "ada")
    with pytest.raises(RecipientNotConnected):
        await api.hub.publish("ada", "n-1", FRAME)


async def test_the_api_shutting_down_closes_the_socket_and_unregisters(tmp_path: Path, store: Store) -> None:
    hub = PushHub()
    app = create_app(make_settings(tmp_path), store=store, hub=hub)
    token = await issue_token(store, "user", "ada")
    async with contextlib.AsyncExitStack() as stack:
        port = await stack.enter_async_context(serve(app))
        ws = await connect(f"ws://127.0.0.1:{port}/v1/ws?token={token}")
        try:
            await recv_json(ws)
            await stack.aclose()  # stop the server with the client still connected
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        finally:
            await ws.close()
    assert not hub.connected("ada")


async def test_store_not_open_closes_with_try_again_later(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), hub=PushHub())  # no store handed in and no lifespan to open one
    async with serve(app) as port, connect(f"ws://127.0.0.1:{port}/v1/ws?token=hrt_x") as ws:
        code, _ = await closed_with(ws)
    assert code == 1013
