"""Signed webhooks against a loopback receiver: the receiver verifies with the `standardwebhooks` package."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.webhook import WebhookChannel, classify
from herald.adapters.store import Store
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.models import AgentNotification, ChannelName, Contact, Priority
from tests.conftest import WEBHOOK_SECRET
from tests.fakes.http import FakeHTTPServer, start_fake


@pytest.fixture
async def channel(store: Store) -> AsyncIterator[WebhookChannel]:
    channel = WebhookChannel(WEBHOOK_SECRET, book=store.users, timeout=2.0, allow_private=True)
    yield channel
    await channel.aclose()


async def message_to(store: Store, url: str, **notification: Any) -> OutboundMessage:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    await store.users.put_contact(user_id, Contact(webhook_url=url))
    fields: dict[str, Any] = {"agent_id": "monitor", "user_id": user_id, "title": "Disk full", "body": "98% on db-1"}
    fields.update(notification)
    n = AgentNotification(**fields)
    contact = await store.users.get_contact(user_id)
    assert contact is not None
    return OutboundMessage(n, ChannelName.webhook, f"notification/{n.notification_id}/webhook", contact)


def path() -> str:
    return f"/hook/{uuid.uuid4().hex[:8]}"


async def test_receiver_verifies_the_signature_with_standardwebhooks(
    channel: WebhookChannel, store: Store, fake_http: FakeHTTPServer
) -> None:
    url = fake_http.script(path(), (200, {"x-message-id": "rcv-1"}))
    message = await message_to(store, url, priority=Priority.high, metadata={"host": "db-1"})
    result = await channel.send(message)
    assert result.provider_message_id == "rcv-1"
    [request] = fake_http.received(url.removeprefix(fake_http.url("")))
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    assert headers["webhook-id"] == message.idempotency_key
    # Exactly what a receiver does: verify, then trust the payload.
    payload = Webhook(WEBHOOK_SECRET).verify(request.body, headers)
    assert payload["type"] == "notification.created"
    assert payload["data"]["notification_id"] == message.notification.notification_id
    assert payload["data"]["title"] == "Disk full"
    assert payload["data"]["priority"] == "high"
    assert payload["data"]["metadata"] == {"host": "db-1"}
    assert request.headers["content-type"] == "application/json"
    # A tampered body or a wrong secret fails verification: the signature covers both.
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(request.body.replace(b"Disk", b"Desk"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(request.body, headers)


async def test_webhook_id_is_stable_across_retries(
    channel: WebhookChannel, store: Store, fake_http: FakeHTTPServer
) -> None:
    p = path()
    url = fake_http.script(p, 503, 200)
    message = await message_to(store, url)
    with pytest.raises(TransientDeliveryError):
        await channel.send(message)
    await channel.send(message)
    first, second = fake_http.received(p)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.idempotency_key
    for request in (first, second):
        Webhook(WEBHOOK_SECRET).verify(request.body, {k: request.headers[k] for k in request.headers})


@pytest.mark.parametrize(
    ("status", "headers", "kind", "type_name", "retry_after"),
    [
        (429, {"retry-after": "7"}, TransientDeliveryError, "WebhookRateLimited", 7.0),
        (502, {}, TransientDeliveryError, "WebhookUnavailable", None),
        (503, {"retry-after": "120"}, TransientDeliveryError, "WebhookUnavailable", 120.0),
        (504, {}, TransientDeliveryError, "WebhookUnavailable", None),
        (500, {}, TransientDeliveryError, "WebhookUnavailable", None),
        (400, {}, PermanentDeliveryError, "WebhookRejected", None),
        (401, {}, PermanentDeliveryError, "WebhookRejected", None),
        (404, {}, PermanentDeliveryError, "WebhookRejected", None),
        (408, {}, PermanentDeliveryError, "WebhookRejected", None),
        (302, {"location": "http://169.254.169.254/"}, PermanentDeliveryError, "WebhookRejected", None),
    ],
)
async def test_failure_classes(
    channel: WebhookChannel,
    store: Store,
    fake_http: FakeHTTPServer,
    status: int,
    headers: dict[str, str],
    kind: type[Exception],
    type_name: str,
    retry_after: float | None,
) -> None:
    p = path()
    message = await message_to(store, fake_http.script(p, (status, headers)))
    with pytest.raises(kind) as exc:
        await channel.send(message)
    assert exc.value.type_name == type_name  # type: ignore[attr-defined]
    assert getattr(exc.value, "retry_after", None) == retry_after
    assert len(fake_http.received(p)) == 1, "redirects are not followed"


async def test_410_disables_the_endpoint_until_the_contact_is_saved_again(
    channel: WebhookChannel, store: Store, fake_http: FakeHTTPServer
) -> None:
    p = path()
    message = await message_to(store, fake_http.script(p, 410))
    with pytest.raises(PermanentDeliveryError) as exc:
        await channel.send(message)
    assert exc.value.type_name == "WebhookGone"
    user_id = message.notification.user_id
    contact = await store.users.get_contact(user_id)
    assert contact is not None and contact.webhook_disabled == "410 Gone"
    # The next notification doesn't knock on a door that said it is gone.
    later = OutboundMessage(message.notification, ChannelName.webhook, message.idempotency_key, contact)
    with pytest.raises(ContactMissing, match="disabled"):
        await channel.send(later)
    assert len(fake_http.received(p)) == 1


async def test_missing_url_and_timeout_and_unreachable(channel: WebhookChannel, store: Store) -> None:
    # A port this test holds bound but never listens on: connecting is refused, whatever else runs here
    # (it used to assume port 9 was closed on every machine).
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        nobody = await message_to(store, f"http://127.0.0.1:{held.getsockname()[1]}/x")
        no_url = OutboundMessage(nobody.notification, ChannelName.webhook, nobody.idempotency_key, Contact())
        with pytest.raises(ContactMissing):
            await channel.send(no_url)
        with pytest.raises(TransientDeliveryError) as exc:
            await channel.send(nobody)  # connection refused
    assert exc.value.type_name == "WebhookUnreachable"

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(5)

    server, task, port = await start_fake(slow)
    try:
        quick = WebhookChannel(WEBHOOK_SECRET, book=store.users, timeout=0.2, allow_private=True)
        with pytest.raises(TransientDeliveryError) as exc:
            await quick.send(await message_to(store, f"http://127.0.0.1:{port}/slow"))
        assert exc.value.type_name == "WebhookTimeout"
        await quick.aclose()
    finally:
        server.should_exit = True
        server.force_exit = True
        await task


async def test_private_addresses_refused_at_send_time_outside_dev_mode(store: Store, fake_http: FakeHTTPServer) -> None:
    """DNS can change after the URL was saved: the guard runs again before each send."""
    strict = WebhookChannel(WEBHOOK_SECRET, book=store.users, allow_private=False)
    p = path()
    message = await message_to(store, fake_http.script(p, 200))
    with pytest.raises(PermanentDeliveryError) as exc:
        await strict.send(message)
    await strict.aclose()
    assert exc.value.type_name == "WebhookUrlRefused"
    assert "loopback" in str(exc.value)
    assert "127.0.0.1" not in str(exc.value)
    assert fake_http.received(p) == []


def test_classify_is_the_whole_policy() -> None:
    assert classify(200, None) is None and classify(204, None) is None
    gone = classify(410, None)
    assert isinstance(gone, PermanentDeliveryError) and gone.type_name == "WebhookGone"
    limited = classify(429, "Wed, 21 Oct 2099 07:28:00 GMT")
    assert isinstance(limited, TransientDeliveryError) and limited.retry_after is not None and limited.retry_after > 0
    assert json.dumps(str(classify(418, None))) == '"webhook endpoint answered 418"'
