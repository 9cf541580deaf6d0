"""A loopback stand-in for Slack's Web API: `POST /api/chat.postMessage` and `POST /api/chat.update`.

It checks the bot token (`Authorization: Bearer`), answers as Slack does (HTTP 200 with `{"ok": true, ...}`, or
HTTP 200 with `{"ok": false, "error": "<code>"}`; 429 with Retry-After and `ratelimited`; a 5xx), and keeps each
conversation's messages by `ts`, so a test reads what the person sees after chat.update.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import read_body


@dataclass
class SlackCall:
    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int
    ok: bool


@dataclass
class SlackFailure:
    error: str | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeSlack:
    token: str
    port: int = 0
    calls: list[SlackCall] = field(default_factory=list)
    failures: list[SlackFailure] = field(default_factory=list)
    # (conversation, ts) -> the message as last posted or updated
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _clock: int = 1_700_000_000

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def fail_next(self, error: str | None, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.failures.append(SlackFailure(error, status, headers or {}))

    def posted(self) -> list[SlackCall]:
        return [c for c in self.calls if c.method == "chat.postMessage" and c.ok]

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    @staticmethod
    def dm_channel(member: str) -> str:
        return "D" + hashlib.sha256(member.encode()).hexdigest()[:10].upper()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method = scope["path"].removeprefix("/api/")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        status, reply, extra = self._answer(method, headers, body)
        self.calls.append(SlackCall(method, headers, body, status, reply.get("ok") is True))
        out = [(b"content-type", b"application/json; charset=utf-8")]
        out += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": json.dumps(reply).encode()})

    def _answer(self, method: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if self.failures:
            failure = self.failures.pop(0)
            if failure.status >= 500:
                return failure.status, {"ok": False, "error": failure.error or "internal_error"}, failure.headers
            return failure.status, {"ok": False, "error": failure.error}, failure.headers
        if method == "chat.postMessage":
            member = str(body.get("channel", ""))
            if not member:
                return 200, {"ok": False, "error": "channel_not_found"}, {}
            channel = self.dm_channel(member) if member[:1] in "UW" else member
            self._clock += 1
            ts = f"{self._clock}.000100"
            self.messages[(channel, ts)] = {"text": body.get("text"), "blocks": body.get("blocks")}
            return 200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text")}}, {}
        if method == "chat.update":
            key = (str(body.get("channel")), str(body.get("ts")))
            if key not in self.messages:
                return 200, {"ok": False, "error": "message_not_found"}, {}
            self.messages[key] = {"text": body.get("text"), "blocks": body.get("blocks")}
            return 200, {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text")}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}
