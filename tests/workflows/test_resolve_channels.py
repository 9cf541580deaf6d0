"""A resolve updates what was already delivered, on the real dev server against the providers' loopback fakes: the
Web Push is replaced (same Topic, `type: resolved`), Slack and Telegram messages are edited to say "Resolved" with
no button left, and email and SMS get a short `Resolved: <title>` only where the user's `notify_resolved` allows it
(default: high and critical).

Each notification is a question, so it is still open (waiting for its answer) when the test resolves it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from herald.adapters.channels.webpush import topic
from herald.adapters.store import Store
from herald.domain import resolve
from herald.models import (
    Action,
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationStatus,
    Preferences,
    Priority,
)
from starter import HeraldClient
from tests.fakes.webpush import Browser
from tests.workflows.test_channels_e2e import PHONE, Providers, fakes, herald  # noqa: F401 (fixtures)
from tests.workflows.test_chat_answers import MEMBER, Chat, chat  # noqa: F401 (fixture)
from tests.workflows.test_resolve import eventually

ACTIONS = [Action(id="restart", label="Restart db-1")]


def question(agent: str, user: str, priority: Priority, channels: list[ChannelName]) -> AgentNotification:
    return AgentNotification(
        agent_id=agent,
        user_id=user,
        title="Disk 95% on db-1",
        priority=priority,
        channels=channels,
        actions=ACTIONS,
        dedup_key="disk-full/db-1",
    )


async def waiting(client: HeraldClient, n: AgentNotification) -> bool:
    """Delivered on every requested channel and waiting for its answer."""
    status = await client.status(n.notification_id)
    return status.status is NotificationStatus.pending and all(
        (r := status.channels.get(c)) is not None and r.status is ChannelStatus.delivered for c in n.channels
    )


async def resolve_open(client: HeraldClient, n: AgentNotification) -> Any:
    """Resolve `n` once it is delivered, waiting for its answer, and listed by Temporal's visibility."""
    await eventually(lambda: waiting(client, n), "the question delivered and waiting")
    query = resolve.open_query(n.agent_id, n.dedup_key or "")

    async def listed() -> bool:
        return (await client.temporal.count_workflows(query)).count == 1

    await eventually(listed, "the question in Temporal's visibility")
    result = await client.resolve(n.agent_id, n.dedup_key or "")
    assert result.resolved == [n.notification_id]
    outcome = await client.get_handle(n.notification_id).outcome()
    assert outcome.status is NotificationStatus.resolved
    return outcome


async def reachable_user(store: Store, fakes: Providers, preferences: dict[str, Any] | None = None) -> Any:  # noqa: F811
    """A user with an email, a phone and one browser subscribed to Web Push (no live WebSocket)."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    await store.users.put_contact(user, Contact(email="ada@example.com", phone=PHONE))
    if preferences is not None:
        await store.users.put_preferences(user, Preferences.model_validate(preferences))
    browser = Browser()
    endpoint = fakes.push.endpoint()
    await store.users.add_push_subscription(user, browser.subscription(endpoint))
    return user, browser, endpoint


async def test_a_resolved_high_alert_replaces_its_web_push_and_is_told_by_email_and_sms(
    herald: tuple[HeraldClient, Store],  # noqa: F811
    fakes: Providers,  # noqa: F811
) -> None:
    client, store = herald
    user, browser, endpoint = await reachable_user(store, fakes)
    agent = f"disk-{uuid.uuid4().hex[:8]}"
    n = question(agent, user, Priority.high, [ChannelName.push, ChannelName.email, ChannelName.sms])
    await client.notify(n)
    await resolve_open(client, n)

    # Web Push: a second push under the first one's Topic, `resolved`, under the same notification id.
    shown, replacing = fakes.push.received(endpoint)
    assert replacing.headers["topic"] == shown.headers["topic"] == topic(f"{n.workflow_id}/push")
    payload = browser.decrypt(replacing.body)
    assert (payload["type"], payload["notification_id"], payload["title"]) == (
        "resolved",
        n.notification_id,
        "Resolved: Disk 95% on db-1",
    )
    assert "actions" not in payload

    # Email and SMS: one short message each, under a key of its own.
    first_mail, resolved_mail = fakes.sendgrid.requests
    sent = resolved_mail.json()
    assert sent["subject"] == "[HIGH] Resolved: Disk 95% on db-1"
    assert sent["personalizations"][0]["custom_args"]["idempotency_key"] == f"{n.workflow_id}/email/resolved"
    assert first_mail.json()["subject"] == "[HIGH] Disk 95% on db-1"
    _, resolved_sms = fakes.twilio.requests
    body = resolved_sms.one("Body")
    assert body is not None and body.startswith("[HIGH] Resolved: Disk 95% on db-1") and "Reply" not in body

    keys = {a.idempotency_key for a in await store.notifications.attempts(n.notification_id)}
    assert {f"{n.workflow_id}/email/resolved", f"{n.workflow_id}/sms/resolved"} <= keys


@pytest.mark.parametrize(
    ("priority", "preferences", "told"),
    [
        pytest.param(Priority.medium, None, False, id="medium-default-not-told"),
        pytest.param(Priority.medium, {"default": {"notify_resolved": "medium"}}, True, id="medium-when-set"),
        pytest.param(Priority.high, {"default": {"notify_resolved": False}}, False, id="high-when-off"),
    ],
)
async def test_email_hears_of_a_resolve_only_as_notify_resolved_allows(
    herald: tuple[HeraldClient, Store],  # noqa: F811
    fakes: Providers,  # noqa: F811
    priority: Priority,
    preferences: dict[str, Any] | None,
    told: bool,
) -> None:
    client, store = herald
    user, browser, endpoint = await reachable_user(store, fakes, preferences)
    n = question(f"disk-{uuid.uuid4().hex[:8]}", user, priority, [ChannelName.push, ChannelName.email])
    await client.notify(n)
    await resolve_open(client, n)

    subjects = [r.json()["subject"] for r in fakes.sendgrid.requests]
    label = priority.value.upper()
    expected = [f"[{label}] Disk 95% on db-1"] + ([f"[{label}] Resolved: Disk 95% on db-1"] if told else [])
    assert subjects == expected
    # The Web Push is replaced whatever the preference: nothing new arrives, what is shown changes.
    assert browser.decrypt(fakes.push.received(endpoint)[-1].body)["type"] == "resolved"


async def test_a_resolved_question_in_slack_and_telegram_is_edited_to_say_resolved(chat: Chat) -> None:  # noqa: F811
    user = f"ada-{uuid.uuid4().hex[:6]}"
    chat_id = 4242
    await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBER, telegram_chat_id=chat_id))
    n = question(f"disk-{uuid.uuid4().hex[:8]}", user, Priority.high, [ChannelName.slack, ChannelName.telegram])
    await chat.client.notify(n)
    await resolve_open(chat.client, n)

    await eventually(lambda: chat.slack.calls_to("chat.update"), "the Slack message's update")
    [slack_message] = chat.slack.messages.values()
    assert slack_message["text"] == "Resolved"
    assert all(block["type"] != "actions" for block in slack_message["blocks"]), "a button was left"

    await eventually(lambda: chat.telegram.calls_to("editMessageText"), "the Telegram message's edit")
    [telegram_message] = [m for k, m in chat.telegram.messages.items() if k[0] == chat_id]
    assert "reply_markup" not in telegram_message
    assert "Resolved" in telegram_message["text"]
