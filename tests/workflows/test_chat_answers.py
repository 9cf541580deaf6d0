"""Questions answered in Slack and Telegram, end to end: real Temporal dev server and worker, the real API on
loopback, the real slack-sdk and httpx against loopback fakes of Slack's Web API and Telegram's Bot API, and
requests signed exactly as Slack and Telegram sign them. The fakes show what the person saw at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.domain.telegram import code_key, new_link_code
from herald.models import (
    AgentNotification,
    AnswerChannel,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationStatus,
    Preferences,
    Priority,
    utcnow,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, make_settings
from tests.fakes.http import start_fake
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.workflows.test_answers import deploy_question, eventually, running_worker, serve_api

SLACK_TOKEN = "xoxb-chat-tests"
SIGNING_SECRET = "slack-signing-secret-for-tests"
TELEGRAM_TOKEN = "123456:telegram-token-for-tests"
TELEGRAM_SECRET = "telegram-webhook-secret-for-tests"
MEMBER = "U024BE7LH"
INTERACTIONS = "/v1/providers/slack/interactions"
TELEGRAM_WEBHOOK = "/v1/providers/telegram/webhook"


@dataclass
class Chat:
    client: HeraldClient
    store: Store
    slack: FakeSlack
    telegram: FakeTelegram
    sendgrid: FakeSendGrid
    api: httpx.AsyncClient

    def question(self, user: str, channels: list[ChannelName], **fields: Any) -> AgentNotification:
        return deploy_question(user, channels, **fields)


@contextlib.asynccontextmanager
async def fakes() -> AsyncIterator[tuple[FakeSlack, FakeTelegram, FakeSendGrid]]:
    slack, telegram, sendgrid = FakeSlack(SLACK_TOKEN), FakeTelegram(TELEGRAM_TOKEN), FakeSendGrid()
    servers = []
    for fake in (slack, telegram, sendgrid):
        server, task, fake.port = await start_fake(fake)
        servers.append((server, task))
    try:
        yield slack, telegram, sendgrid
    finally:
        for server, task in servers:
            server.should_exit = True
            await task


@pytest.fixture
async def chat(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Chat]:
    task_queue = f"chat-{uuid.uuid4().hex[:12]}"
    async with fakes() as (slack, telegram, sendgrid):
        settings = make_settings(
            tmp_path / "herald",
            public_url="https://herald.example.com",
            SLACK_BOT_TOKEN=SLACK_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
            TELEGRAM_API_URL=telegram.api_url,
            TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
            SENDGRID_API_KEY="SG.chat",
            SENDGRID_API_HOST=sendgrid.host,
        )
        async with running_worker(temporal_env, settings, task_queue) as runtime:
            client = HeraldClient(temporal_env.client, task_queue, FAST_POLICY, store=runtime.store)
            async with (
                serve_api(settings, client, runtime) as port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api,
            ):
                yield Chat(client, runtime.store, slack, telegram, sendgrid, api)


def slack_signed(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's request signing: v0= HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def click_body(button: dict[str, Any], member: str = MEMBER) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": member, "username": "someone"},
        "container": {"type": "message"},
        "actions": [{**button, "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)})


async def click(chat: Chat, button: dict[str, Any], member: str = MEMBER, **signing: Any) -> httpx.Response:
    body = click_body(button, member)
    return await chat.api.post(INTERACTIONS, content=body, headers=slack_signed(body, **signing))


def slack_buttons(slack: FakeSlack) -> dict[str, dict[str, Any]]:
    """The buttons of the one message posted, by label."""
    [posted] = slack.posted()
    [actions] = [b for b in posted.body["blocks"] if b["type"] == "actions"]
    return {e["text"]["text"]: {"action_id": e["action_id"], "value": e["value"]} for e in actions["elements"]}


def shown(slack: FakeSlack) -> dict[str, Any]:
    [message] = slack.messages.values()
    return message


async def unanswered(chat: Chat, notification_id: str) -> bool:
    outcome = await chat.client.get_handle(notification_id).status()
    return outcome.answer is None and outcome.acknowledged is None


# --- Slack ---------------------------------------------------------------------------------------------------


async def test_a_question_answered_in_slack_reaches_the_agent_and_the_message_says_so(chat: Chat) -> None:
    user = f"ada-{uuid.uuid4().hex[:6]}"
    await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBER))
    question = chat.question(user, [ChannelName.slack])
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: chat.slack.posted(), "the Slack message")
    buttons = slack_buttons(chat.slack)
    assert set(buttons) == {"Approve", "Deny", "Seen"}
    assert buttons["Approve"] == {"action_id": "herald:approve", "value": question.notification_id}

    # Refused before anything is read, nothing answered: a forged signature, a stale timestamp.
    forged = await click(chat, buttons["Deny"], secret="not-the-signing-secret")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
    stale = await click(chat, buttons["Deny"], timestamp=int(time.time()) - 301)
    assert stale.status_code == 401
    body = click_body(buttons["Deny"])
    tampered = await chat.api.post(INTERACTIONS, content=body.replace("deny", "approve"), headers=slack_signed(body))
    assert tampered.status_code == 401
    # Another member of the workspace: an ephemeral refusal, nothing answered.
    other = await click(chat, buttons["Deny"], member="U0OTHER000")
    assert other.status_code == 200 and other.json()["response_type"] == "ephemeral"
    assert "only the person this was sent to" in other.json()["text"]
    assert await unanswered(chat, question.notification_id)

    answered = await click(chat, buttons["Approve"])
    assert answered.status_code == 200 and answered.content == b""
    outcome = await asking
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.user_id, outcome.answer.channel) == (
        "approve",
        user,
        AnswerChannel.slack,
    )
    provider_id = outcome.channels[ChannelName.slack].provider_message_id
    assert provider_id is not None and tuple(provider_id.split(":")) in chat.slack.messages

    # The message now says what was decided, with no button left.
    at = outcome.answer.answered_at.strftime("%H:%M")
    await eventually(lambda: chat.slack.calls_to("chat.update"), "the message's update")
    message = shown(chat.slack)
    assert all(b["type"] != "actions" for b in message["blocks"])
    assert message["text"] == f"Approve by {user} via slack, {at} UTC"

    # A second click: refused, the answer stays.
    again = await click(chat, buttons["Deny"])
    assert again.status_code == 200 and again.json()["text"].startswith("Herald: not taken")
    final = await chat.client.get_handle(question.notification_id).outcome()
    assert final.answer is not None and final.answer.action_id == "approve"


async def test_a_question_answered_elsewhere_edits_the_slack_message_and_a_late_click_is_refused(chat: Chat) -> None:
    user = f"bo-{uuid.uuid4().hex[:6]}"
    await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBER))
    question = chat.question(user, [ChannelName.slack])
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: chat.slack.posted(), "the Slack message")
    buttons = slack_buttons(chat.slack)
    await chat.client.respond(question.notification_id, "deny", user, AnswerChannel.api)
    outcome = await asking
    assert outcome.answer is not None and outcome.answer.channel is AnswerChannel.api
    await eventually(lambda: chat.slack.calls_to("chat.update"), "the message's update")
    assert shown(chat.slack)["text"].startswith(f"Deny by {user} via api, ")
    late = await click(chat, buttons["Approve"])
    assert late.json()["text"].startswith("Herald: not taken")
    final = await chat.client.get_handle(question.notification_id).outcome()
    assert final.answer is not None and final.answer.action_id == "deny"


async def test_a_click_after_the_deadline_is_refused_and_the_message_says_expired(chat: Chat) -> None:
    user = f"cy-{uuid.uuid4().hex[:6]}"
    await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBER))
    question = chat.question(user, [ChannelName.slack], respond_by=utcnow() + timedelta(seconds=3))
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: chat.slack.posted(), "the Slack message")
    buttons = slack_buttons(chat.slack)
    outcome = await asking
    assert outcome.status is NotificationStatus.expired
    await eventually(lambda: chat.slack.calls_to("chat.update"), "the message's update")
    assert shown(chat.slack)["text"] == "Expired"
    late = await click(chat, buttons["Approve"])
    assert late.status_code == 200 and late.json()["text"].startswith("Herald: not taken")
    final = await chat.client.get_handle(question.notification_id).outcome()
    assert final.answer is None and final.status is NotificationStatus.expired


async def test_seen_acks_a_critical_notification(chat: Chat) -> None:
    user = f"di-{uuid.uuid4().hex[:6]}"
    await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBER))
    await chat.store.users.put_preferences(user, Preferences.model_validate({"default": {"push": False}}))
    question = chat.question(user, [ChannelName.slack], priority=Priority.critical)
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: chat.slack.posted(), "the Slack message")
    seen = await click(chat, slack_buttons(chat.slack)["Seen"])
    assert seen.status_code == 200
    acked = await eventually(lambda: _acked(chat, question.notification_id), "the ack")
    assert acked.channel is AnswerChannel.slack and acked.user_id == user
    assert (await chat.client.get_handle(question.notification_id).status()).answer is None  # an ack is no answer
    await chat.client.respond(question.notification_id, "approve", user)
    assert (await asking).status is NotificationStatus.answered


async def _acked(chat: Chat, notification_id: str) -> Any:
    return (await chat.client.get_handle(notification_id).status()).acknowledged


async def test_a_slack_outage_falls_back_to_email(chat: Chat) -> None:
    user = f"ed-{uuid.uuid4().hex[:6]}"
    await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBER, email="ed@example.com"))
    await chat.store.users.put_preferences(user, Preferences.model_validate({"default": {"push": False}}))
    for _ in range(FAST_POLICY.retry.maximum_retries + 1):
        chat.slack.fail_next("internal_error", 503)
    n = chat.question(user, [ChannelName.slack], actions=[], respond_by=None)
    outcome = await (await chat.client.notify(n)).outcome()
    assert outcome.status is NotificationStatus.delivered
    assert outcome.channels[ChannelName.slack].status is ChannelStatus.failed
    assert outcome.channels[ChannelName.email].status is ChannelStatus.delivered
    assert outcome.channels[ChannelName.email].fallback_for is ChannelName.slack
    assert len(chat.sendgrid.requests) == 1 and chat.slack.posted() == []


async def test_a_user_without_a_slack_member_id_is_never_sent_to_slack(chat: Chat) -> None:
    user = f"fi-{uuid.uuid4().hex[:6]}"
    await chat.store.users.put_contact(user, Contact(email="fi@example.com"))
    n = chat.question(user, [ChannelName.slack], actions=[], respond_by=None)
    outcome = await (await chat.client.notify(n)).outcome()
    assert outcome.status is NotificationStatus.no_channel and chat.slack.calls == []


# --- Telegram ------------------------------------------------------------------------------------------------


def telegram_post(chat: Chat, update: dict[str, Any], secret: str = TELEGRAM_SECRET) -> Any:
    return chat.api.post(TELEGRAM_WEBHOOK, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret})


def callback(message_id: int, chat_id: int, data: str) -> dict[str, Any]:
    return {
        "update_id": 1,
        "callback_query": {
            "id": uuid.uuid4().hex[:16],
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"},
            "message": {"message_id": message_id, "chat": {"id": chat_id, "type": "private"}},
            "data": data,
        },
    }


async def test_a_question_answered_in_telegram_after_binding_the_chat(chat: Chat) -> None:
    user = f"gu-{uuid.uuid4().hex[:6]}"
    chat_id = 424242
    code = new_link_code()
    await chat.store.answers.add_telegram_link(code_key(code), user, time.time() + 600)

    # The webhook's secret token is checked before anything is read.
    wrong = await telegram_post(chat, {"message": {"chat": {"id": 666}, "text": f"/start {code}"}}, secret="nope")
    assert wrong.status_code == 401 and await chat.store.users.get_contact(user) is None
    bound = await telegram_post(chat, {"update_id": 1, "message": {"chat": {"id": chat_id}, "text": f"/start {code}"}})
    assert bound.status_code == 200 and bound.json()["method"] == "sendMessage"
    contact = await chat.store.users.get_contact(user)
    assert contact is not None and contact.telegram_chat_id == chat_id
    # The code works once.
    reused = await telegram_post(chat, {"message": {"chat": {"id": 777}, "text": f"/start {code}"}})
    assert "unknown, used or expired" in reused.json()["text"]
    assert (await chat.store.users.get_contact(user)).telegram_chat_id == chat_id  # type: ignore[union-attr]

    question = chat.question(user, [ChannelName.telegram], body="<b>not markup</b> & more")
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: chat.telegram.calls_to("sendMessage"), "the Telegram message")
    [sent] = chat.telegram.calls_to("sendMessage")
    assert sent.body["chat_id"] == chat_id and sent.body["parse_mode"] == "HTML"
    assert "&lt;b&gt;not markup&lt;/b&gt; &amp; more" in sent.body["text"]
    keyboard = [row[0] for row in sent.body["reply_markup"]["inline_keyboard"]]
    assert [b["text"] for b in keyboard] == ["Approve", "Deny", "Seen"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in keyboard)
    assert all(
        question.notification_id not in b["callback_data"] and "Deploy" not in b["callback_data"] for b in keyboard
    )
    [(_, message_id)] = chat.telegram.messages

    # A click from another chat on the same message id is not the bound chat's: refused, nothing answered.
    stranger = await telegram_post(chat, callback(message_id, 999, keyboard[1]["callback_data"]))
    assert stranger.json()["method"] == "answerCallbackQuery" and "not known" in stranger.json()["text"]
    assert await unanswered(chat, question.notification_id)

    pressed = await telegram_post(chat, callback(message_id, chat_id, keyboard[0]["callback_data"]))
    assert pressed.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": pressed.json()["callback_query_id"],
        "text": "Herald: got it, Approve.",
    }
    outcome = await asking
    assert outcome.answer is not None and outcome.answer.channel is AnswerChannel.telegram
    assert outcome.answer.action_id == "approve"
    await eventually(lambda: chat.telegram.calls_to("editMessageText"), "the message's edit")
    edited = chat.telegram.messages[(chat_id, message_id)]
    assert "reply_markup" not in edited
    assert f"Approve by {user} via telegram, {outcome.answer.answered_at.strftime('%H:%M')} UTC" in edited["text"]

    again = await telegram_post(chat, callback(message_id, chat_id, keyboard[1]["callback_data"]))
    assert again.json()["text"].startswith("Herald: not taken")


async def test_an_escalation_acked_by_someone_else_edits_the_first_steps_slack_message_to_say_who(chat: Chat) -> None:
    """Step 1 reaches ada in Slack and she doesn't ack; step 2 reaches bob, who acks by API: the escalation stops and
    ada's Slack message says "Acknowledged by bob via api"."""
    from herald.domain.oncall import child_notification_id
    from herald.models.oncall import EscalationPolicy

    tag = uuid.uuid4().hex[:6]
    ada, bob = f"ada-{tag}", f"bob-{tag}"
    await chat.store.users.put_contact(ada, Contact(slack_user_id=MEMBER))
    await chat.store.users.put_contact(bob, Contact(email=f"{bob}@example.com"))
    await chat.store.oncall.put_policy(
        EscalationPolicy(
            name=f"p-{tag}",
            updated_at=utcnow(),
            steps=[
                {"targets": [f"user:{ada}"], "ack_within_seconds": 1},
                {"targets": [f"user:{bob}"], "ack_within_seconds": 60},
            ],
        )
    )
    n = AgentNotification(
        agent_id="db-agent",
        user_id=ada,
        title="Replica lag",
        channels=[ChannelName.slack, ChannelName.email],
        escalation_policy=f"p-{tag}",
    )
    handle = await chat.client.notify(n)
    await eventually(lambda: chat.slack.posted(), "ada's Slack message")
    assert list(slack_buttons(chat.slack)) == ["Acknowledge"]  # the step's ack, and no second "Seen"
    bob_child = child_notification_id(n.notification_id, 0, 1, bob)

    async def bob_asked() -> bool:
        with contextlib.suppress(Exception):
            return bool((await chat.client.get_handle(bob_child).status()).delivered_channels)
        return False

    await eventually(bob_asked, "step 2: bob's email")
    await chat.client.respond(bob_child, "ack", bob, AnswerChannel.api)
    outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.confirmed
    await eventually(lambda: chat.slack.calls_to("chat.update"), "ada's message's update")
    assert shown(chat.slack)["text"].startswith(f"Acknowledged by {bob} via api, ")
    ada_child = chat.client.get_handle(child_notification_id(n.notification_id, 0, 0, ada))
    told = await ada_child.outcome()
    assert told.taken_by is not None and told.taken_by.user_id == bob
