"""A fake SendGrid v3 API on 127.0.0.1: records every request and answers from a script, one reply per call.

With no script left it answers 202 with an `X-Message-Id`, as SendGrid does for an accepted message. Every
`/v3/mail/send` body is first validated against SendGrid's published OpenAPI description
(`tests/fakes/specs/tsg_mail_v3.json`): one that does not conform gets SendGrid's 400 with the fields named,
whatever the script says, so a request the real API would refuse fails the test that sent it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import read_body
from tests.fakes.openapi import SENDGRID_MAIL_SEND

MAIL_SEND_PATH = "/v3/mail/send"


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON; None sends an empty body
    delay: float = 0.0  # seconds to wait before answering, to make a client time out


@dataclass
class SendGridRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    probe: Any = None  # what `on_request` returned while this request was being handled
    problems: list[tuple[str, str]] = field(default_factory=list)  # why the spec refuses it (then a 400)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeSendGrid:
    replies: list[Reply] = field(default_factory=list)
    requests: list[SendGridRequest] = field(default_factory=list)
    on_request: Callable[[], Any] | None = None
    port: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply | int) -> None:
        self.replies = [r if isinstance(r, Reply) else Reply(r) for r in replies]

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()
        self.on_request = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        probe = self.on_request() if self.on_request else None
        problems = mail_send_problems(body) if scope["path"] == MAIL_SEND_PATH else []
        self.requests.append(SendGridRequest(scope["method"], scope["path"], headers, body, probe, problems))
        if problems:
            reply = Reply(400, body={"errors": [{"message": m, "field": f, "help": None} for f, m in problems]})
        else:
            reply = self.replies.pop(0) if self.replies else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        reply_headers = dict(reply.headers)
        if reply.status in (200, 202):
            reply_headers.setdefault("X-Message-Id", f"fake-msg-{next(self._ids)}")
        content = json.dumps(reply.body).encode() if reply.body is not None else b""
        if content:
            reply_headers.setdefault("content-type", "application/json")
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in reply_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": content})


def mail_send_problems(body: bytes) -> list[tuple[str, str]]:
    """What SendGrid's spec refuses in a /v3/mail/send body: (field, message) pairs, none when it conforms."""
    try:
        document = json.loads(body)
    except ValueError:
        return [("body", "is not JSON")]
    return SENDGRID_MAIL_SEND.problems(document)
