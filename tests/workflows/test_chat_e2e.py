"""The chat channel end to end: a NotificationWorkflow on a real worker, through the real Apprise library, to a
loopback `json://` receiver (tests/fakes/http.py), counted at the receiver."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from herald.models import AgentNotification, ChannelName, ChannelStatus, Contact, NotificationStatus, Preferences
from tests.conftest import Harness
from tests.fakes.http import FakeHTTPServer
from tests.workflows.test_encrypted_history import clear_text

TOKEN = "chat-webhook-token-7c1e5b"


async def chat_user(herald: Harness, fake: FakeHTTPServer, *replies: int) -> tuple[str, str]:
    """A user whose one chat URL is the fake's path (its token in the query, as a webhook's would be); push off."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    path = f"/chat/{user}"
    fake.script(path, *replies)
    url = f"json://127.0.0.1:{fake.port}{path}?token={TOKEN}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com", chat_urls=[url]))
    await herald.store.users.put_preferences(user, Preferences.model_validate({"default": {"push": False}}))
    return user, path


def chat_notification(user: str) -> AgentNotification:
    return AgentNotification(
        agent_id="monitor", user_id=user, title="Deploy finished", body="all green", channels=[ChannelName.chat]
    )


async def test_delivered_once_through_apprise_and_the_url_stays_out_of_logs_and_history(
    herald: Harness, fake_http: FakeHTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user, path = await chat_user(herald, fake_http, 200)
    notification = chat_notification(user)
    handle = await herald.client.notify(notification)
    outcome = await handle.outcome()

    assert outcome.status is NotificationStatus.delivered
    assert outcome.channels[ChannelName.chat].status is ChannelStatus.delivered
    [received] = fake_http.received(path)
    sent = json.loads(received.body)
    assert (
        sent["title"] == "Deploy finished" and "all green" in sent["message"] and "Priority: medium" in sent["message"]
    )
    assert f"/v1/notifications/{notification.notification_id}" in sent["message"]

    history = await herald.client.temporal.get_workflow_handle(notification.workflow_id).fetch_history()
    text = clear_text(history.to_json())
    assert "Deploy finished" in text, "the history's payloads are searched decoded"
    assert TOKEN not in text and path not in text, "the chat URL reached Temporal history"
    assert TOKEN not in caplog.text and path not in caplog.text, "the chat URL reached the logs"


async def test_a_503_then_ok_is_retried(herald: Harness, fake_http: FakeHTTPServer) -> None:
    user, path = await chat_user(herald, fake_http, 503, 200)
    outcome = await (await herald.client.notify(chat_notification(user))).outcome()
    chat = outcome.channels[ChannelName.chat]
    assert (chat.status, chat.attempt_count) == (ChannelStatus.delivered, 2)
    assert [r.status for r in fake_http.received(path)] == [503, 200]


async def test_always_failing_falls_back_to_email(herald: Harness, fake_http: FakeHTTPServer) -> None:
    user, path = await chat_user(herald, fake_http, 503, 503, 503, 503, 503)
    outcome = await (await herald.client.notify(chat_notification(user))).outcome()
    chat, email = outcome.channels[ChannelName.chat], outcome.channels[ChannelName.email]
    assert (chat.status, chat.attempt_count) == (ChannelStatus.failed, 4)
    assert (email.status, email.fallback_for) == (ChannelStatus.delivered, ChannelName.chat)
    assert outcome.status is NotificationStatus.delivered
    assert len(fake_http.received(path)) == 4, "the first try and three retries, each at the receiver"
    assert len(list(herald.outbox("email").glob("*.json"))) == 1
