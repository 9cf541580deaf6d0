"""A loopback SendGrid and webhook receiver that counts what it accepted, by idempotency key.

Counting at the provider is the only honest way to say "nothing lost": Herald's own log could be wrong in
the same way as the code under test. Each accepted request is counted under the key Herald sent with it
(SendGrid `personalizations[0].custom_args.idempotency_key`, the webhook's `webhook-id`), which is `<workflow_id>/<channel>`;
a key accepted twice is a duplicate the person would have seen twice.

Each SendGrid body is first judged by SendGrid's published OpenAPI description, with the validator the
fakes in tests/fakes use: one it refuses is answered 400 with the fields named, as SendGrid answers, is not
counted, and is kept in `malformed` (the `ledger` fixture fails a test that leaves any there).

Faults on demand: an error rate (503s at random), a channel that is down (503 until told otherwise) and
a channel that hangs (holds each request until released).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import read_body
from tests.fakes.sendgrid import mail_send_problems

SENDGRID_PATH = "/v3/mail/send"
HOOK_PREFIX = "/hook/"


@dataclass
class Ledger:
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # 503s answered, by channel
    error_rate: float = 0.0
    down: set[str] = field(default_factory=set)  # channels answering 503
    hanging: set[str] = field(default_factory=set)  # channels holding requests until `release` is set
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0  # requests held right now
    requests: int = 0  # requests that arrived, answered or not
    first_accepted: dict[str, float] = field(default_factory=dict)  # key -> time.monotonic() of its first 2xx
    malformed: list[list[tuple[str, str]]] = field(default_factory=list)  # SendGrid bodies its spec refuses
    seed: int = 8
    port: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def sendgrid_host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hook_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PREFIX}{name}"

    def delivered(self, channel: str | None = None) -> int:
        """Distinct keys accepted (on one channel when given)."""
        return sum(1 for key in self.accepted if channel is None or key.endswith(f"/{channel}"))

    async def settled(self, quiet: float = 0.5) -> None:
        """Return once no request has arrived for `quiet` seconds: what was sent before now is counted."""
        seen = -1
        while seen != self.requests:
            seen = self.requests
            await asyncio.sleep(quiet)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        if path == SENDGRID_PATH:
            problems = mail_send_problems(body)
            if problems:
                self.malformed.append(problems)
                errors = [{"message": message, "field": name, "help": None} for name, message in problems]
                await _answer(send, 400, {}, {"errors": errors})
                return
            channel, key, ok = "email", json.loads(body)["personalizations"][0]["custom_args"]["idempotency_key"], 202
        elif path.startswith(HOOK_PREFIX):
            channel, key, ok = "webhook", headers["webhook-id"], 200
        else:
            await _answer(send, 404, {})
            return
        if channel in self.hanging:
            self.held += 1
            try:
                await self.release.wait()
            finally:
                self.held -= 1
        if channel in self.down or (self.error_rate and self._rng.random() < self.error_rate):
            self.refused[channel] += 1
            await _answer(send, 503, {})
            return
        self.accepted[key] += 1
        self.first_accepted.setdefault(key, time.monotonic())
        await _answer(send, ok, {"X-Message-Id": f"ledger-{next(self._ids)}"} if channel == "email" else {})


async def _answer(send: Any, status: int, headers: dict[str, str], body: Any = None) -> None:
    content = json.dumps(body).encode() if body is not None else b""
    if content:
        headers = {**headers, "content-type": "application/json"}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": content})


@dataclass(frozen=True)
class Tally:
    """What the providers saw against what should have reached them."""

    expected: int
    delivered: int
    lost: list[str]
    duplicates: dict[str, int]  # key -> times accepted, for keys accepted more than once
    unexpected: list[str]  # keys nobody asked for (a bug in the test or in Herald)

    @property
    def duplicate_sends(self) -> int:
        return sum(n - 1 for n in self.duplicates.values())

    def summary(self) -> str:
        rate = self.duplicate_sends / self.expected if self.expected else 0.0
        lines = [
            f"expected {self.expected} (notification, channel) deliveries; delivered {self.delivered}; "
            f"lost {len(self.lost)}; duplicates {self.duplicate_sends} ({rate:.2%})"
        ]
        lines += [f"  duplicate: {key} accepted {n} times" for key, n in sorted(self.duplicates.items())]
        lines += [f"  lost: {key}" for key in self.lost[:20]]
        return "\n".join(lines)


def tally(expected: Iterable[str], accepted: Counter[str]) -> Tally:
    wanted = set(expected)
    return Tally(
        expected=len(wanted),
        delivered=len(wanted & set(accepted)),
        lost=sorted(wanted - set(accepted)),
        duplicates={key: n for key, n in accepted.items() if n > 1},
        unexpected=sorted(set(accepted) - wanted),
    )


def keys(notification_ids: Iterable[str], channels: Iterable[str]) -> list[str]:
    """The idempotency keys Herald uses: `notification/<id>/<channel>`."""
    return [f"notification/{n}/{c}" for n in notification_ids for c in channels]
