"""End to end: a notification workflow with every provider configured, each one a loopback fake.

The worker is built from Settings exactly as `herald worker` builds it; the real client libraries
(sendgrid, twilio, pywebpush, httpx) talk to the fakes, and the delivery log must tell the whole story.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from herald.adapters.channels.assembly import providers
from herald.adapters.store import Store
from herald.adapters.vapid import generate_vapid_keys
from herald.api.app import create_app
from herald.config import Settings
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationStatus,
    Preferences,
    Priority,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, make_settings
from tests.fakes.http import FakeHTTPServer, start_fake
from tests.fakes.sendgrid import FakeSendGrid, Reply
from tests.fakes.twilio import FakeTwilio
from tests.fakes.webpush import Browser, FakePushService, push_service
from worker import create_worker, open_runtime

ACCOUNT_SID = "AC" + "e2e0" * 8
AUTH_TOKEN = "twilio-e2e-token"
PUBLIC_URL = "https://herald.example.com"
PHONE = "+14155550100"


@dataclass
class Providers:
    sendgrid: FakeSendGrid
    twilio: FakeTwilio
    push: FakePushService
    hooks: FakeHTTPServer
    settings: Settings


@pytest.fixture
async def fakes(tmp_path: Path, fake_http: FakeHTTPServer) -> AsyncIterator[Providers]:
    sendgrid, twilio = FakeSendGrid(), FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    sg_server, sg_task, sendgrid.port = await start_fake(sendgrid)
    tw_server, tw_task, twilio.port = await start_fake(twilio)
    async with push_service() as push:
        settings = make_settings(
            tmp_path / "herald",
            public_url=PUBLIC_URL,
            SENDGRID_API_KEY="SG.e2e-key",
            SENDGRID_API_HOST=sendgrid.host,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM="+14155550199",
            TWILIO_API_BASE=twilio.base_url,
            VAPID_PRIVATE_KEY=generate_vapid_keys().private_key,
            VAPID_SUBJECT="mailto:ops@herald.test",
        )
        yield Providers(sendgrid, twilio, push, fake_http, settings)
    for server, task in ((sg_server, sg_task), (tw_server, tw_task)):
        server.should_exit = True
        await task


@pytest.fixture
async def herald(temporal_env: WorkflowEnvironment, fakes: Providers) -> AsyncIterator[tuple[HeraldClient, Store]]:
    task_queue = f"e2e-{uuid.uuid4().hex[:12]}"
    async with (
        open_runtime(fakes.settings) as runtime,
        create_worker(temporal_env.client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
    ):
        yield HeraldClient(temporal_env.client, task_queue, FAST_POLICY), runtime.store


def test_settings_choose_every_provider(fakes: Providers) -> None:
    chosen = providers(fakes.settings)
    assert chosen.pop(ChannelName.chat).startswith("apprise ("), "chat is always Apprise, naming its schemes"
    assert chosen == {
        ChannelName.push: "websocket (in-process), then web push",
        ChannelName.email: "sendgrid",
        ChannelName.sms: "twilio",
        ChannelName.webhook: "signed POST",
        # No Slack or Telegram bot here: those write to the outbox (tests/workflows/test_chat_answers.py has them).
        ChannelName.slack: "outbox",
        ChannelName.telegram: "outbox",
    }
    assert set(providers(Settings.from_flat({"home": "/tmp/x"})).values()) >= {"outbox"}


async def test_one_notification_reaches_all_four_providers(
    herald: tuple[HeraldClient, Store], fakes: Providers
) -> None:
    client, store = herald
    user = f"user-{uuid.uuid4().hex[:8]}"
    hook_path = f"/e2e/{user}"
    await store.users.put_contact(
        user, Contact(email="ada@example.com", phone=PHONE, webhook_url=fakes.hooks.script(hook_path, 204))
    )
    browser = Browser()
    endpoint = fakes.push.endpoint(201)
    await store.users.add_push_subscription(user, browser.subscription(endpoint))

    notification = AgentNotification(
        agent_id="monitor",
        user_id=user,
        title="Error rate 7% on checkout",
        body="p95 latency 1.2 s <b>since 10:02</b>",
        priority=Priority.high,
        channels=[ChannelName.push, ChannelName.email, ChannelName.sms, ChannelName.webhook],
    )
    outcome = await (await client.notify(notification)).outcome()
    assert outcome.status is NotificationStatus.delivered
    assert {c: r.status for c, r in outcome.channels.items()} == dict.fromkeys(
        outcome.channels, ChannelStatus.delivered
    )
    key = f"notification/{notification.notification_id}"

    # SendGrid: one /v3/mail/send, authenticated, with the idempotency key in custom_args.
    [mail] = fakes.sendgrid.requests
    assert (mail.path, mail.headers["authorization"]) == ("/v3/mail/send", "Bearer SG.e2e-key")
    sent = mail.json()
    assert sent["subject"] == "[HIGH] Error rate 7% on checkout"
    [personalization] = sent["personalizations"]
    assert personalization["to"] == [{"email": "ada@example.com"}]
    assert personalization["custom_args"] == {
        "idempotency_key": f"{key}/email",
        "notification_id": notification.notification_id,
    }
    text, html = sent["content"]
    assert text["type"] == "text/plain" and "<b>since 10:02</b>" in text["value"]
    assert html["type"] == "text/html" and "&lt;b&gt;since 10:02&lt;/b&gt;" in html["value"]

    # Twilio: one message to the contact's number, with the status callback into Herald's public URL.
    [sms] = fakes.twilio.requests
    assert sms.one("To") == PHONE and sms.one("From") == "+14155550199"
    assert sms.one("StatusCallback") == f"{PUBLIC_URL}/v1/providers/twilio/status"
    body = sms.one("Body")
    assert body is not None and body.startswith("[HIGH] Error rate 7% on checkout")
    assert f"{PUBLIC_URL}/v1/notifications/{notification.notification_id}" in body

    # Web Push (nobody on the WebSocket): the browser decrypts the notification.
    [pushed] = fakes.push.received(endpoint)
    payload = browser.decrypt(pushed.body)
    assert (payload["notification_id"], payload["title"]) == (notification.notification_id, notification.title)

    # Webhook: verified by the receiver exactly as the Standard Webhooks library does it.
    [hook] = fakes.hooks.received(hook_path)
    event = Webhook(WEBHOOK_SECRET).verify(hook.body, {k: v for k, v in hook.headers.items()})
    assert event["data"]["notification_id"] == notification.notification_id
    assert hook.headers["webhook-id"] == f"{key}/webhook"

    # The delivery log: one delivered attempt per channel, each with the provider's own message id.
    attempts = {a.channel: a for a in await store.notifications.attempts(notification.notification_id)}
    assert set(attempts) == set(notification.channels)
    assert all(a.result is ChannelStatus.delivered and a.attempt == 1 for a in attempts.values())
    assert attempts[ChannelName.email].provider_message_id == "fake-msg-1"  # the fake SendGrid's first X-Message-Id
    assert attempts[ChannelName.sms].provider_message_id == fakes.twilio.sids[0]
    assert attempts[ChannelName.push].provider_message_id is not None

    # Twilio later reports the handset got it: the signed callback lands on that attempt.
    app = create_app(fakes.settings, store=store)
    form = {"MessageSid": fakes.twilio.sids[0], "MessageStatus": "delivered", "To": PHONE}
    url = f"{PUBLIC_URL}/v1/providers/twilio/status"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as api:
        response = await api.post("/v1/providers/twilio/status", data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 204, response.text
    [sms_attempt] = [
        a for a in await store.notifications.attempts(notification.notification_id) if a.channel is ChannelName.sms
    ]
    assert sms_attempt.provider_status == "delivered"


async def test_rate_limit_then_refused_number_then_fallback(
    herald: tuple[HeraldClient, Store], fakes: Providers
) -> None:
    """SendGrid says 429 until a reset a second away: the retry waits for it. Twilio refuses the number for
    good: the contact is marked and the workflow falls back to the next channel in the order the person
    allows (push is off for them), the webhook."""
    client, store = herald
    user = f"user-{uuid.uuid4().hex[:8]}"
    hook_path = f"/e2e/{user}"
    await store.users.put_contact(
        user, Contact(email="bo@example.com", phone=PHONE, webhook_url=fakes.hooks.url(hook_path))
    )
    await store.users.put_preferences(user, Preferences.model_validate({"default": {"push": False}}))
    fakes.sendgrid.script(Reply(429, {"X-RateLimit-Reset": str(int(time.time()) + 1)}), 202)
    fakes.twilio.fail_next(21211)

    notification = AgentNotification(
        agent_id="monitor",
        user_id=user,
        title="Disk 98% on db-1",
        priority=Priority.high,
        channels=[ChannelName.email, ChannelName.sms],
    )
    outcome = await (await client.notify(notification)).outcome()
    assert outcome.status is NotificationStatus.delivered
    email, sms, webhook = (outcome.channels[c] for c in (ChannelName.email, ChannelName.sms, ChannelName.webhook))
    assert (email.status, email.attempt_count) == (ChannelStatus.delivered, 2)
    assert (sms.status, sms.error_type) == (ChannelStatus.failed, "PhoneRejected")
    assert (webhook.status, webhook.fallback_for) == (ChannelStatus.delivered, ChannelName.sms)
    first, second = fakes.sendgrid.requests
    assert first.json()["personalizations"][0]["custom_args"] == second.json()["personalizations"][0]["custom_args"]
    contact = await store.users.get_contact(user)
    assert contact is not None and contact.phone_rejected == "twilio error 21211"
    assert len(fakes.twilio.requests) == 1


async def test_retries_run_out_then_fallback(herald: tuple[HeraldClient, Store], fakes: Providers) -> None:
    """A webhook receiver that answers 503 to every try: the four tries (the first and three retries) reach it,
    then email delivers once as its fallback, counted at the SendGrid fake.

    The README cites this for "its retries run out and the next channel delivers, with `fallback_for`"; the
    test it cited before checked neither `fallback_for` nor what reached a provider.
    """
    client, store = herald
    user = f"user-{uuid.uuid4().hex[:8]}"
    hook_path = f"/e2e/{user}"
    url = fakes.hooks.script(hook_path, 503, 503, 503, 503, 503)
    await store.users.put_contact(user, Contact(email="ada@example.com", webhook_url=url))
    await store.users.put_preferences(user, Preferences.model_validate({"default": {"push": False}}))
    notification = AgentNotification(
        agent_id="monitor",
        user_id=user,
        title="Queue backlog 10k",
        priority=Priority.high,
        channels=[ChannelName.webhook],
    )
    outcome = await (await client.notify(notification)).outcome()

    webhook, email = outcome.channels[ChannelName.webhook], outcome.channels[ChannelName.email]
    assert (webhook.status, webhook.attempt_count) == (ChannelStatus.failed, 4)
    assert (email.status, email.fallback_for) == (ChannelStatus.delivered, ChannelName.webhook)
    assert outcome.status is NotificationStatus.delivered
    assert len(fakes.hooks.received(hook_path)) == 4, "the first try and three retries, each at the receiver"
    assert {r.headers["webhook-id"] for r in fakes.hooks.received(hook_path)} == {
        f"notification/{notification.notification_id}/webhook"
    }
    [mail] = fakes.sendgrid.requests
    assert mail.json()["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
