"""A scriptable HTTP endpoint on 127.0.0.1, standing in for a provider (a user's webhook receiver here).

Each path answers from its script in turn (status, headers), then 200 forever; every request is recorded.
"""

from __future__ import annotations

import asyncio
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Reply = tuple[int, dict[str, str]]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class FakeHTTPServer:
    scripts: dict[str, list[Reply]] = field(default_factory=lambda: defaultdict(list))
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    def script(self, path: str, *replies: int | Reply) -> str:
        self.scripts[path] = [r if isinstance(r, tuple) else (r, {}) for r in replies]
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = scope["path"]
        script = self.scripts.get(path) or []
        status, headers = script.pop(0) if script else (200, {})
        self.requests.append(Recorded(path, {k.decode(): v.decode() for k, v in scope["headers"]}, body, status))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})


class ClientGone(Exception):
    """The client closed its connection before the whole body arrived: a real server never sees that request."""


async def read_body(receive: Any) -> bytes:
    """The whole request body of an ASGI http request; ClientGone if the client left before sending it all."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def _dropping_unfinished(app: Any) -> Any:
    """The app, answering nothing (and recording nothing) for a request whose client left mid-body."""

    async def serve(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except ClientGone:
            return

    return serve


async def start_fake(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve an ASGI app on a free loopback port; return the server, its task and the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_dropping_unfinished(app), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, port
