"""A loopback stand-in for Telegram's Bot API: `POST /bot<token>/sendMessage` and `/bot<token>/editMessageText`.

An unknown token gets 401 as Telegram answers it; scripted failures answer Telegram's error shape
(`{"ok": false, "error_code", "description", "parameters": {"retry_after"}}`). Messages are kept by (chat, id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import read_body


@dataclass
class TelegramCall:
    method: str
    body: dict[str, Any]
    status: int


@dataclass
class FakeTelegram:
    token: str
    port: int = 0
    calls: list[TelegramCall] = field(default_factory=list)
    failures: list[tuple[int, str, int | None]] = field(default_factory=list)  # status, description, retry_after
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    _next_id: int = 100

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, status: int, description: str, retry_after: int | None = None) -> None:
        self.failures.append((status, description, retry_after))

    def calls_to(self, method: str) -> list[TelegramCall]:
        return [c for c in self.calls if c.method == method]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        token, _, method = scope["path"].removeprefix("/bot").partition("/")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        status, reply = self._answer(token, method, body)
        self.calls.append(TelegramCall(method, body, status))
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": json.dumps(reply).encode()})

    def _answer(self, token: str, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if self.failures:
            status, description, retry_after = self.failures.pop(0)
            reply: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
            if retry_after is not None:
                reply["parameters"] = {"retry_after": retry_after}
            return status, reply
        if method == "sendMessage":
            chat_id = body.get("chat_id")
            if not isinstance(chat_id, int):
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
            self._next_id += 1
            self.messages[(chat_id, self._next_id)] = body
            return 200, {"ok": True, "result": {"message_id": self._next_id, "chat": {"id": chat_id}, "text": ""}}
        if method == "editMessageText":
            key = (body.get("chat_id"), body.get("message_id"))
            if key not in self.messages:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
            self.messages[key] = body  # type: ignore[index]
            return 200, {"ok": True, "result": {"message_id": key[1], "chat": {"id": key[0]}}}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
