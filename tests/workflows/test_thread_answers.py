"""Free-text answers from chat replies, end to end: a reply in the Slack thread of the question's message (Slack's
Events API, signed exactly as Slack signs it) and a Telegram message replying to the question's message (the bot
webhook) answer the question's one text action with the person's words. Real Temporal dev server and worker, the
real API on loopback, the real slack-sdk and httpx against the loopback fakes (the fixture of
tests/workflows/test_chat_answers.py), which show the message as the person sees it at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx

from herald.models import Action, AnswerChannel, ChannelName, Contact, NotificationStatus
from tests.conftest import FAST_POLICY
from tests.workflows.test_answers import eventually
from tests.workflows.test_chat_answers import (
    MEMBER,
    TELEGRAM_SECRET,
    Chat,
    chat,  # noqa: F401  (the stack with the Slack and Telegram fakes)
    shown,
    slack_signed,
    telegram_post,
    unanswered,
)

EVENTS = "/v1/providers/slack/events"
REPLY = Action(id="reply", label="Reply", input="text")
ACTIONS = [Action(id="approve", label="Approve"), REPLY]
WORDS = "Ship it after the 5pm freeze — ping Zoë first 🚀"


def slack_event(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "deprecated-verification-token",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "event": event,
    }


def thread_message(channel: str, thread_ts: str, text: str, member: str = MEMBER, **fields: Any) -> dict[str, Any]:
    """A `message` event as Slack sends it for a reply in a thread of a direct message."""
    return {
        "type": "message",
        "channel": channel,
        "channel_type": "im",
        "user": member,
        "text": text,
        "ts": f"{time.time():.6f}",
        "thread_ts": thread_ts,
        **fields,
    }


async def post_event(
    stack: Chat, payload: dict[str, Any], *, retry: int | None = None, **signing: Any
) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False)
    headers = {**slack_signed(body, **signing), "Content-Type": "application/json"}
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return await stack.api.post(EVENTS, content=body, headers=headers)


async def slack_question(stack: Chat, actions: list[Action]) -> tuple[str, asyncio.Task[Any], str, str, str]:
    """Ask a question of a user whose Slack member id is MEMBER; the user, the ask, and where its message is."""
    user = f"th-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(slack_user_id=MEMBER))
    question = stack.question(user, [ChannelName.slack], actions=actions)
    asking = asyncio.create_task(stack.client.ask(question))
    await eventually(lambda: stack.slack.posted(), "the Slack message")
    [(channel, ts)] = stack.slack.messages
    return user, asking, question.notification_id, channel, ts


async def test_a_reply_in_the_slack_thread_answers_the_text_action_and_nothing_else_does(chat: Chat) -> None:  # noqa: F811
    # Slack's url_verification: the challenge comes back, once the request is signed.
    challenge = {
        "token": "x",
        "type": "url_verification",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    }
    verified = await post_event(chat, challenge)
    assert verified.status_code == 200 and verified.json() == {"challenge": challenge["challenge"]}
    assert (await post_event(chat, challenge, secret="not-the-signing-secret")).status_code == 401

    user, asking, notification_id, channel, ts = await slack_question(chat, ACTIONS)
    # The message says how to answer in words.
    hint = "To answer Reply in your own words, reply in this message's thread."
    assert {"type": "mrkdwn", "text": hint} in [e for b in shown(chat.slack)["blocks"] for e in b.get("elements", [])]

    # None of these answers: a forged or stale signature (401 before anything is read), another member in the
    # thread, the same words in another thread, a bot's message, an edit, and a message outside any thread.
    reply = slack_event(thread_message(channel, ts, WORDS))
    forged = await post_event(chat, reply, secret="not-the-signing-secret")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
    assert (await post_event(chat, reply, timestamp=int(time.time()) - 301)).status_code == 401
    body = json.dumps(reply, ensure_ascii=False)
    tampered = await chat.api.post(
        EVENTS,
        content=body.replace(WORDS, "Roll it back"),
        headers={**slack_signed(body), "Content-Type": "application/json"},
    )
    assert tampered.status_code == 401
    ignored = [
        thread_message(channel, ts, WORDS, member="U0OTHER000"),
        thread_message(channel, "1700000999.000100", WORDS),
        thread_message(channel, ts, WORDS, bot_id="B0001", subtype="bot_message"),
        {**thread_message(channel, ts, WORDS), "subtype": "message_changed"},
        {key: value for key, value in thread_message(channel, ts, WORDS).items() if key != "thread_ts"},
    ]
    for event in ignored:
        answered = await post_event(chat, slack_event(event))
        assert answered.status_code == 200 and answered.content == b""
    assert await unanswered(chat, notification_id) and not asking.done()

    # The person's reply in the thread, as Slack escapes it (&, <, >): the agent gets the words as typed.
    typed = f"{WORDS} & <ask> first"
    escaped = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    taken = await post_event(chat, slack_event(thread_message(channel, ts, escaped)))
    assert taken.status_code == 200
    outcome = await asking
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.text, outcome.answer.channel, outcome.answer.user_id) == (
        "reply",
        typed,
        AnswerChannel.slack,
        user,
    )
    # The message is edited as for a button: no button left, the decision said.
    await eventually(lambda: chat.slack.calls_to("chat.update"), "the message's update")
    message = shown(chat.slack)
    assert all(b["type"] != "actions" for b in message["blocks"]) and hint not in json.dumps(message)
    assert message["text"] == f"Reply by {user} via slack, {outcome.answer.answered_at.strftime('%H:%M')} UTC"

    # A later reply in the thread is refused by the workflow: the first words stay.
    later = await post_event(chat, slack_event(thread_message(channel, ts, "Actually, wait")))
    assert later.status_code == 200
    final = await chat.client.get_handle(notification_id).outcome()
    assert final.answer is not None and final.answer.text == typed


async def test_a_retried_slack_event_is_one_answer(chat: Chat) -> None:  # noqa: F811
    _, asking, notification_id, channel, ts = await slack_question(chat, ACTIONS)
    # The message's edit fails a few times, so the question's workflow is still running when the retry comes.
    for _ in range(FAST_POLICY.retry.maximum_retries):
        chat.slack.fail_next("internal_error", 503)
    event = slack_event(thread_message(channel, ts, WORDS))
    first = await post_event(chat, event)
    assert first.status_code == 200
    retried = await post_event(chat, event, retry=1)
    assert retried.status_code == 200
    outcome = await asking
    assert outcome.answer is not None and (outcome.answer.text, outcome.answer.channel) == (WORDS, AnswerChannel.slack)
    # The retry was the same answer, not a second one refused: the outcome records no refused answer.
    assert outcome.refused_answers == []
    final = await chat.client.get_handle(notification_id).outcome()
    assert final.answer == outcome.answer and final.refused_answers == []


async def test_a_slack_reply_to_a_question_without_one_text_action_answers_nothing(chat: Chat) -> None:  # noqa: F811
    for actions in ([Action(id="approve", label="Approve")], [REPLY, Action(id="why", label="Why", input="text")]):
        chat.slack.messages.clear()
        chat.slack.calls.clear()
        user, asking, notification_id, channel, ts = await slack_question(chat, actions)
        answered = await post_event(chat, slack_event(thread_message(channel, ts, WORDS)))
        assert answered.status_code == 200
        assert await unanswered(chat, notification_id) and not asking.done()
        # The question still takes its answers another way.
        await chat.client.respond(notification_id, actions[0].id, user, text="typed" if actions[0].takes_text else None)
        assert (await asking).status is NotificationStatus.answered


# --- Telegram ------------------------------------------------------------------------------------------------


def telegram_message(chat_id: int, text: str, reply_to: int | None, message_id: int = 500) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"},
        "chat": {"id": chat_id, "type": "private"},
        "date": int(time.time()),
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = {"message_id": reply_to, "chat": {"id": chat_id, "type": "private"}}
    return {"update_id": message_id, "message": message}


async def test_a_telegram_reply_to_the_question_answers_its_text_action(chat: Chat) -> None:  # noqa: F811
    user = f"tg-{uuid.uuid4().hex[:6]}"
    chat_id = 515151
    await chat.store.users.put_contact(user, Contact(telegram_chat_id=chat_id))
    question = chat.question(user, [ChannelName.telegram], actions=ACTIONS)
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: chat.telegram.calls_to("sendMessage"), "the Telegram message")
    [(_, message_id)] = chat.telegram.messages
    hint = "To answer Reply in your own words, reply to this message."
    assert f"<i>{hint}</i>" in chat.telegram.messages[(chat_id, message_id)]["text"]

    # None of these answers: no webhook secret (401), the same message id from another chat, a reply to another
    # message, a message replying to nothing.
    reply = telegram_message(chat_id, WORDS, reply_to=message_id)
    assert (await telegram_post(chat, reply, secret=TELEGRAM_SECRET + "x")).status_code == 401
    for update in (
        telegram_message(999, WORDS, reply_to=message_id),
        telegram_message(chat_id, WORDS, reply_to=message_id + 1000),
        telegram_message(chat_id, WORDS, reply_to=None),
    ):
        ignored = await telegram_post(chat, update)
        assert ignored.status_code == 200 and ignored.content == b""
    assert await unanswered(chat, question.notification_id) and not asking.done()

    taken = await telegram_post(chat, reply)
    assert taken.status_code == 200 and taken.content == b""
    outcome = await asking
    assert outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.text, outcome.answer.channel) == (
        "reply",
        WORDS,
        AnswerChannel.telegram,
    )
    await eventually(lambda: chat.telegram.calls_to("editMessageText"), "the message's edit")
    edited = chat.telegram.messages[(chat_id, message_id)]
    assert "reply_markup" not in edited and hint not in edited["text"]
    assert f"Reply by {user} via telegram, {outcome.answer.answered_at.strftime('%H:%M')} UTC" in edited["text"]

    # Another reply once answered: said to be refused in the chat, the first words stay.
    later = await telegram_post(chat, telegram_message(chat_id, "Actually, wait", reply_to=message_id, message_id=501))
    assert later.json()["method"] == "sendMessage" and later.json()["text"].startswith("Herald: not taken")
    assert later.json()["chat_id"] == chat_id and "Actually" not in later.json()["text"]
    final = await chat.client.get_handle(question.notification_id).outcome()
    assert final.answer is not None and final.answer.text == WORDS
