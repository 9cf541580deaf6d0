"""SendGridChannel drives the real `sendgrid` client against a fake SendGrid API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.sendgrid import (
    MAX_RATE_LIMIT_WAIT_SECONDS,
    SendGridChannel,
    classify_status,
    error_fields,
    rate_limit_retry_after,
)
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.models import AgentNotification, ChannelName, Contact, Priority
from tests.fakes.http import start_fake
from tests.fakes.sendgrid import FakeSendGrid, Reply

API_KEY = "SG.test-key-for-the-fake"
SENDER = "herald@example.com"
RECIPIENT = "alice@example.com"


@pytest.fixture(scope="module")
async def sendgrid_server() -> AsyncIterator[FakeSendGrid]:
    fake = FakeSendGrid()
    server, task, fake.port = await start_fake(fake)
    yield fake
    server.should_exit = True
    await task


@pytest.fixture
def fake(sendgrid_server: FakeSendGrid) -> FakeSendGrid:
    """The shared server, with no records or script left from another test."""
    sendgrid_server.reset()
    return sendgrid_server


def channel_for(fake: FakeSendGrid, **kwargs: object) -> SendGridChannel:
    options: dict[str, object] = {"host": fake.host, "sender": SENDER, "link_base": "https://herald.example.com"}
    options.update(kwargs)
    return SendGridChannel(API_KEY, **options)  # type: ignore[arg-type]


def outbound(email: str | None = RECIPIENT, **fields: object) -> OutboundMessage:
    values: dict[str, object] = {
        "notification_id": "n-123",
        "agent_id": "deploy-bot",
        "user_id": "alice",
        "title": "Deploy failed",
        "body": "The build broke on main.",
        "priority": Priority.high,
        "metadata": {"service": "api", "attempt": 3},
    }
    values.update(fields)
    notification = AgentNotification.model_validate(values)
    return OutboundMessage(notification, ChannelName.email, f"{notification.workflow_id}/email", Contact(email=email))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the request SendGrid receives ----------------------------------------------------------------


async def test_sends_the_exact_mail_send_request(fake: FakeSendGrid) -> None:
    await channel_for(fake).send(outbound())

    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    [personalization] = body["personalizations"]
    assert personalization["to"] == [{"email": RECIPIENT}]
    assert body["from"] == {"email": SENDER}
    assert body["subject"] == "[HIGH] Deploy failed"
    assert [part["type"] for part in body["content"]] == ["text/plain", "text/html"]
    text, html = (part["value"] for part in body["content"])
    assert "The build broke on main." in text and "The build broke on main." in html
    assert "https://herald.example.com/v1/notifications/n-123" in text
    assert 'href="https://herald.example.com/v1/notifications/n-123"' in html
    assert "deploy-bot" in text and "deploy-bot" in html
    assert personalization["custom_args"] == {"idempotency_key": "notification/n-123/email", "notification_id": "n-123"}
    assert "custom_args" not in body, "the top-level custom_args is a string in SendGrid's spec"
    assert request.problems == []


async def test_agent_text_is_escaped_in_html_and_verbatim_in_text(fake: FakeSendGrid) -> None:
    message = outbound(
        title="<script>alert(1)</script>",
        body="<b>bold</b> & more",
        metadata={"<i>key</i>": "<b>value</b>"},
    )
    await channel_for(fake).send(message)

    text, html = (part["value"] for part in fake.requests[0].json()["content"])
    for raw in ("<script>alert(1)</script>", "<b>bold</b> & more", "<i>key</i>", "<b>value</b>"):
        assert raw in text
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert "&lt;i&gt;key&lt;/i&gt;" in html and "&lt;b&gt;value&lt;/b&gt;" in html


async def test_returns_sendgrids_message_id(fake: FakeSendGrid) -> None:
    fake.script(Reply(202, {"X-Message-Id": "sg-abc-123"}))
    result = await channel_for(fake).send(outbound())
    assert result.provider_message_id == "sg-abc-123"


async def test_200_from_sandbox_mode_is_success(fake: FakeSendGrid) -> None:
    fake.script(Reply(200, {"X-Message-Id": "sandbox-1"}))
    result = await channel_for(fake).send(outbound())
    assert result.provider_message_id == "sandbox-1"


async def test_missing_email_is_contact_missing_and_sends_nothing(fake: FakeSendGrid) -> None:
    with pytest.raises(ContactMissing):
        await channel_for(fake).send(outbound(email=None))
    assert fake.requests == []


async def test_send_does_not_block_the_event_loop(fake: FakeSendGrid) -> None:
    # The fake is served on this same event loop: if the blocking client ran on the loop instead of in a
    # thread, the fake could never answer and the send would hang until its timeout and fail.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    fake.on_request = lambda: ticks
    started_at = ticks
    try:
        result = await channel_for(fake, timeout=2.0).send(outbound())
    finally:
        task.cancel()
    assert result.provider_message_id
    [request] = fake.requests
    assert request.probe > started_at  # the ticker kept running while the request was in flight
    assert ticks > request.probe


# --- classification ---------------------------------------------------------------------------------


async def test_429_retries_after_the_rate_limit_reset(fake: FakeSendGrid) -> None:
    reset = int(time.time()) + 30
    fake.script(Reply(429, {"X-RateLimit-Reset": str(reset)}, {"errors": [{"message": "too many requests"}]}))
    with pytest.raises(TransientDeliveryError) as caught:
        await channel_for(fake).send(outbound())
    assert caught.value.type_name == "SendGridRateLimited"
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


async def test_429_without_a_reset_uses_the_regular_backoff(fake: FakeSendGrid) -> None:
    fake.script(429)
    with pytest.raises(TransientDeliveryError) as caught:
        await channel_for(fake).send(outbound())
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_transient(fake: FakeSendGrid, status: int) -> None:
    fake.script(status)
    with pytest.raises(TransientDeliveryError) as caught:
        await channel_for(fake).send(outbound())
    assert caught.value.type_name == "SendGridUnavailable"
    assert str(status) in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
async def test_client_errors_are_permanent(fake: FakeSendGrid, status: int) -> None:
    fake.script(status)
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel_for(fake).send(outbound())
    assert not caught.value.retryable
    assert str(status) in str(caught.value)
    assert len(fake.requests) == 1


async def test_a_rejection_names_the_fields_but_never_the_address(fake: FakeSendGrid) -> None:
    errors = [{"message": f"{RECIPIENT} does not contain a valid address", "field": "personalizations.0.to.0.email"}]
    fake.script(Reply(400, body={"errors": errors}))
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel_for(fake).send(outbound())
    assert caught.value.type_name == "SendGridRejected"
    assert "personalizations.0.to.0.email" in str(caught.value)
    assert RECIPIENT not in str(caught.value)


async def test_a_refused_key_is_permanent_and_says_so(fake: FakeSendGrid) -> None:
    fake.script(401)
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel_for(fake).send(outbound())
    assert caught.value.type_name == "SendGridUnauthorized"
    assert API_KEY not in str(caught.value)


async def test_connection_refused_is_transient() -> None:
    channel = SendGridChannel(API_KEY, host=f"http://127.0.0.1:{free_port()}", sender=SENDER)
    with pytest.raises(TransientDeliveryError) as caught:
        await channel.send(outbound())
    assert caught.value.type_name == "SendGridUnreachable"


async def test_a_slow_answer_times_out_as_transient(fake: FakeSendGrid) -> None:
    fake.script(Reply(202, delay=1.0))
    with pytest.raises(TransientDeliveryError) as caught:
        await channel_for(fake, timeout=0.2).send(outbound())
    assert caught.value.type_name == "SendGridTimeout"


# --- pure helpers -----------------------------------------------------------------------------------


def test_rate_limit_retry_after_counts_from_now() -> None:
    assert rate_limit_retry_after("1030", now=1000.0) == 30.0
    assert rate_limit_retry_after(" 1000.5 ", now=1000.0) == 0.5


def test_rate_limit_retry_after_is_floored_and_capped() -> None:
    assert rate_limit_retry_after("900", now=1000.0) == 0.0
    assert rate_limit_retry_after("999999", now=1000.0) == MAX_RATE_LIMIT_WAIT_SECONDS


@pytest.mark.parametrize("value", [None, "", "soon", "nan"])
def test_rate_limit_retry_after_ignores_absent_or_unreadable_values(value: str | None) -> None:
    assert rate_limit_retry_after(value, now=1000.0) is None


def test_error_fields_keeps_only_field_paths() -> None:
    body = (
        b'{"errors": [{"message": "bad", "field": "from.email"}, {"field": "from.email"},'
        b' {"field": "a b@example.com"}, {"field": null}, "junk"]}'
    )
    assert error_fields(body) == ["from.email"]
    assert error_fields(b"not json") == []
    assert error_fields(None) == []
    assert error_fields(b'["a list"]') == []


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
        (400, PermanentDeliveryError),
        (401, PermanentDeliveryError),
        (403, PermanentDeliveryError),
        (413, PermanentDeliveryError),
        (422, PermanentDeliveryError),
    ],
)
def test_classify_status(status: int, kind: type[Exception]) -> None:
    error = classify_status(status, None, None, now=0.0)
    assert type(error) is kind
