"""Hostile text through a real NotificationWorkflow to every provider: markup and script, emoji, right-to-left
text and direction overrides, and CR/LF aimed at mail headers.

Email (SMTP to aiosmtpd, and SendGrid's fake) escapes it in HTML and keeps it verbatim in text, on one subject
line, with no header added and no recipient but the contact; SMS (Twilio's fake) and push (a live WebSocket)
carry it as plain text, exactly as the agent wrote it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Literal

import pytest
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.render import email_payload, email_subject, sms_payload
from herald.adapters.channels.smtp import build_email
from herald.adapters.store import Store
from herald.config import Settings
from herald.models import AgentNotification, ChannelName, Contact, NotificationStatus, Priority
from herald.services.auth import issue_token
from starter import HeraldClient
from tests.conftest import FAST_POLICY, make_settings
from tests.fakes.http import start_fake
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.smtp import RecordingHandler, start_smtp
from tests.fakes.twilio import FakeTwilio
from worker import create_worker, open_runtime

NOT_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # lone surrogates are not text: the API refuses them
ACCOUNT_SID = "AC" + "b0b0" * 8
AUTH_TOKEN = "twilio-hostile-token"
EMAIL = "ada@example.com"
PHONE = "+14155550100"
# Markup, a script, emoji (one outside the BMP), Hebrew and Arabic, a right-to-left override, and a CRLF
# followed by what would be two more headers if a line break ever reached the mail header.
TITLE = '<script>alert("x")</script> 🚨 עברית عربي \u202eevil\u202c & "q"\r\nBcc: victim@evil.test\nX-Injected: yes'
BODY = "<img src=x onerror=alert(1)> <b>bold</b>\r\n\r\nTo: another@evil.test\r\n.\r\nRCPT TO:<x@evil.test> 👍🏽"
EXPECTED_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "x-herald-notification-id",
    "x-herald-idempotency-key",
    "mime-version",
    "content-type",
}


@dataclass
class Stack:
    client: HeraldClient
    store: Store
    settings: Settings
    twilio: FakeTwilio
    sendgrid: FakeSendGrid | None
    smtp: RecordingHandler | None


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Controller, RecordingHandler]]:
    handler = RecordingHandler()
    controller = start_smtp(handler)
    yield controller, handler
    controller.stop()


@pytest.fixture(params=["smtp", "sendgrid"])
async def stack(
    request: pytest.FixtureRequest,
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    smtp_server: tuple[Controller, RecordingHandler],
) -> AsyncIterator[Stack]:
    """A worker with Twilio and one email provider (SMTP or SendGrid) configured, each a loopback fake."""
    twilio, sendgrid = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN), FakeSendGrid()
    servers = [await start_fake(twilio)]
    twilio.port = servers[0][2]
    email: dict[str, object]
    if request.param == "sendgrid":
        servers.append(await start_fake(sendgrid))
        sendgrid.port = servers[-1][2]
        email = {"SENDGRID_API_KEY": "SG.hostile-key", "SENDGRID_API_HOST": sendgrid.host}
    else:
        controller, handler = smtp_server
        handler.reset()
        email = {"SMTP_URL": f"smtp://herald:secret@127.0.0.1:{controller.port}"}
    settings = make_settings(
        tmp_path / "herald",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM="+14155550199",
        TWILIO_API_BASE=twilio.base_url,
        **email,
    )
    queue = f"hostile-{uuid.uuid4().hex[:10]}"
    try:
        async with (
            open_runtime(settings) as runtime,
            create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
        ):
            yield Stack(
                HeraldClient(temporal_env.client, queue, FAST_POLICY),
                runtime.store,
                settings,
                twilio,
                sendgrid if request.param == "sendgrid" else None,
                smtp_server[1] if request.param == "smtp" else None,
            )
    finally:
        for server, task, _port in servers:
            server.should_exit = True
            await task


async def test_hostile_title_reaches_every_channel_safely(stack: Stack) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    await stack.store.users.put_contact(user, Contact(email=EMAIL, phone=PHONE))
    notification = AgentNotification(
        agent_id="monitor",
        user_id=user,
        title=TITLE,
        body=BODY,
        priority=Priority.high,
        channels=[ChannelName.email, ChannelName.sms],
        metadata={"<k>": "<v onload=x>", "note": "line\r\nbreak"},
    )
    outcome = await (await stack.client.notify(notification)).outcome()
    assert outcome.status is NotificationStatus.delivered, outcome
    title = notification.title  # stripped at the ends only: the CR/LF inside stays
    one_line = " ".join(title.split())
    assert "\r\n" in title

    [sms] = stack.twilio.requests
    sms_body = sms.one("Body")
    assert sms_body is not None
    assert sms_body.startswith(f"[HIGH] {title}"[:40])  # plain text: no escaping, emoji and RTL intact
    assert "<script>" in sms_body and "🚨" in sms_body and "עברית" in sms_body
    assert sms.one("To") == PHONE

    if stack.sendgrid is not None:
        [mail] = stack.sendgrid.requests
        sent = mail.json()
        assert sent["subject"] == f"[HIGH] {one_line}"
        assert "\r" not in sent["subject"] and "\n" not in sent["subject"]
        assert [p["to"] for p in sent["personalizations"]] == [[{"email": EMAIL}]]
        assert set(sent) <= {"personalizations", "from", "subject", "content", "headers"}
        text, html = (part["value"] for part in sent["content"])
        assert_bodies(text, html)
    else:
        assert stack.smtp is not None
        [received] = stack.smtp.received
        assert received.rcpt_tos == [EMAIL]
        message = received.message
        assert {name.lower() for name in message.keys()} == EXPECTED_HEADERS
        assert same_words(str(message["Subject"]), f"[HIGH] {one_line}")
        assert message["To"] == EMAIL and message.get_all("Bcc") is None
        header_block = received.content.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        # Each line starts a known header or continues one (folded lines start with whitespace).
        for line in header_block:
            assert line[:1] in (b" ", b"\t") or line.split(b":", 1)[0].lower().decode() in EXPECTED_HEADERS, line
        text_part, html_part = (part.get_content() for part in message.iter_parts())
        assert_bodies(text_part, html_part)


def same_words(subject: str, expected: str) -> bool:
    """Equal but for whitespace: CPython's header folding can drop the space between two non-ASCII words when
    it folds there (the space becomes the gap between two encoded words, which readers ignore). Lossy, but it
    adds nothing: no header, no line break."""
    return "".join(subject.split()) == "".join(expected.split())


def assert_bodies(text: str, html: str) -> None:
    assert "<script>alert" in text and "<img src=x onerror" in text and "🚨" in text and "👍🏽" in text
    assert "<script>" not in html and "<img src=x" not in html and "<v onload" not in html and "<b>bold" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "🚨" in html and "עברית" in html and "\u202e" in html


async def test_push_frame_carries_the_title_as_plain_text(herald_push: tuple[HeraldClient, Store, int]) -> None:
    client, store, port = herald_push
    user = f"user-{uuid.uuid4().hex[:8]}"
    token = await issue_token(store, "user", user)
    notification = AgentNotification(
        agent_id="monitor", user_id=user, title=TITLE, body=BODY, channels=[ChannelName.push]
    )
    async with connect(f"ws://127.0.0.1:{port}/v1/ws?token={token}") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
        handle = await client.notify(notification)
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["type"] == "notification"
        assert (frame["title"], frame["body"]) == (notification.title, BODY)
        await ws.send(json.dumps({"type": "ack", "notification_id": frame["notification_id"]}))
        outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.delivered


# --- the same promise for any title at all, without a server ---------------------------------------------


def outbound(title: str, body: str = "") -> OutboundMessage:
    notification = AgentNotification(agent_id="a", user_id="u", title=title, body=body, priority=Priority.high)
    return OutboundMessage(notification, ChannelName.email, f"{notification.workflow_id}/email", Contact(email=EMAIL))


TITLES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=NOT_SURROGATES)
    | st.sampled_from("\r\n\x0b\x0c\x85\u2028\u2029\x00:;<>@,"),
    min_size=1,
    max_size=120,
).filter(lambda t: t.strip() != "")


@given(title=TITLES, body=st.text(max_size=200))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_title_adds_a_mail_header_or_breaks_the_subject_line(title: str, body: str) -> None:
    try:
        message = outbound(title, body.encode("utf-8", "replace").decode())
    except ValueError:
        return  # a title the model refuses (too long once stripped, say) never reaches an email
    sent = build_email(message, "Herald <herald@example.com>", "text", "<p>html</p>", datetime(2026, 1, 1, tzinfo=UTC))
    wire = sent.as_bytes(policy=policy.SMTP)
    parsed = BytesParser(policy=policy.default).parsebytes(wire)
    assert {name.lower() for name in parsed.keys()} == EXPECTED_HEADERS
    assert parsed["To"] == EMAIL
    assert same_words(str(parsed["Subject"]), email_subject(message))
    subject = email_payload(message, "herald@example.com")["subject"]
    assert not any(c in subject for c in "\r\n\x0b\x0c\x85\u2028\u2029")
    sms = sms_payload(message.__class__(message.notification, ChannelName.sms, "k", Contact(phone=PHONE)), None)
    assert sms["To"] == PHONE
