"""A loopback stand-in for Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.

It checks HTTP Basic auth like Twilio (account SID and auth token), records each form body, and answers
201 with a Twilio-shaped message, or the next scripted error in Twilio's error JSON shape. Each form body is
first validated against Twilio's published OpenAPI description (`tests/fakes/specs/twilio_api_v2010.json`,
CreateMessage, with its conditional From/MessagingServiceSid and Body/MediaUrl/ContentSid): one that does not
conform gets Twilio's 400 (code 21602 or 21603 for a missing body or sender, else 20001), whatever the script says.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.http import read_body
from tests.fakes.openapi import TWILIO_CREATE_MESSAGE, twilio_conditional_problems

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-zA-Z]+)/Messages\.json$")


@dataclass
class TwilioRequest:
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    status: int
    problems: list[tuple[str, str]] = field(default_factory=list)  # why the spec refuses it (then a 400)

    def one(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class TwilioError:
    code: int
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted error"


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    port: int = 0
    requests: list[TwilioRequest] = field(default_factory=list)
    errors: list[TwilioError] = field(default_factory=list)
    sids: list[str] = field(default_factory=list)
    # While set, requests wait for `release` (set by the test's teardown): a Twilio that never answers.
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, code: int, status: int = 400, headers: dict[str, str] | None = None) -> None:
        self.errors.append(TwilioError(code, status, headers or {}))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.hang:
            await self.release.wait()
        form = parse_qs(body.decode(), keep_blank_values=True)
        problems = create_message_problems(form) if MESSAGES_PATH.match(scope["path"]) else []
        status, reply, extra = self._answer(scope["method"], scope["path"], headers, form, problems)
        self.requests.append(TwilioRequest(scope["path"], headers, form, status, problems))
        out = [(b"content-type", b"application/json")] + [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": json.dumps(reply).encode()})

    def _answer(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        form: dict[str, list[str]],
        problems: list[tuple[str, str]],
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        match = MESSAGES_PATH.match(path)
        if method != "POST" or match is None:
            return 404, error_body(20404, 404, "The requested resource was not found"), {}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if headers.get("authorization") != expected or match["account"] != self.account_sid:
            return 401, error_body(20003, 401, "Authenticate"), {}
        if problems:
            field_name, message = problems[0]
            code = {"Body": 21602, "From": 21603}.get(field_name, 20001)
            return 400, error_body(code, 400, f"Invalid parameter {field_name}: {message}"), {}
        if self.errors:
            error = self.errors.pop(0)
            return error.status, error_body(error.code, error.status, error.message), error.headers
        sid = "SM" + uuid.uuid4().hex
        self.sids.append(sid)
        first = {name: values[0] for name, values in form.items()}
        return (
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "messaging_service_sid": first.get("MessagingServiceSid"),
                "to": first.get("To"),
                "from": first.get("From"),
                "body": first.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "price": None,
                "price_unit": "USD",
                "error_code": None,
                "error_message": None,
                "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
                "date_updated": "Thu, 01 Jan 2026 00:00:00 +0000",
                "date_sent": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
                "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            },
            {},
        )


def error_body(code: int, status: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def create_message_problems(form: dict[str, list[str]]) -> list[tuple[str, str]]:
    """What Twilio's spec refuses in a Messages.create form: (field, message) pairs, none when it conforms."""
    document = TWILIO_CREATE_MESSAGE.form(form)
    return TWILIO_CREATE_MESSAGE.problems(document) + twilio_conditional_problems(document)
