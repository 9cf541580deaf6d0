"""Free-text answers, end to end: an action with `input: "text"` is answered in the person's own words on every
channel (the HTTP respond route, the WebSocket, an SMS reply through Twilio, the email answer page, a webhook's
respond_url), the waiting agent gets `answer.text`, and the refusals (no text for a text action, text for a
button, text over 2000 characters) name `text`. Real Temporal dev server and worker, the real API on loopback,
the real SendGrid and Twilio libraries against the loopback fakes (the fixtures of tests/workflows/test_answers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect

from herald.adapters.store import Store
from herald.config import Settings
from herald.models import Action, AgentNotification, AnswerChannel, ChannelName, Contact, NotificationStatus, utcnow
from herald.services.auth import issue_token
from starter import AnswerRefused, HeraldClient
from starter.client import connect_temporal
from tests.channels.test_websocket import recv_json
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, make_settings
from tests.fakes.http import FakeHTTPServer
from tests.workflows.test_answers import (
    ANSWER_SECRET,
    PHONE,
    PUBLIC_URL,
    Stack,
    email_links,
    eventually,
    fake_providers,
    inbound,
    twilio_post,
)
from tests.workflows.test_encrypted_history import K1, clear_text
from worker import create_worker, open_runtime

REPLY = Action(id="reply", label="Reply", input="text")
ACTIONS = [Action(id="approve", label="Approve"), REPLY]
WORDS = "Ship it after the 5pm freeze — ping Zoë first 🚀"


@contextlib.asynccontextmanager
async def codec_worker(
    client: Client, settings: Settings, task_queue: str
) -> AsyncIterator[tuple[HeraldClient, Store]]:
    """A worker on `client` (one with the codec), and a HeraldClient over it."""
    async with (
        open_runtime(settings) as runtime,
        create_worker(client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
    ):
        yield HeraldClient(client, task_queue, FAST_POLICY, store=runtime.store), runtime.store


async def test_a_text_answer_through_the_http_respond_route_and_its_refusals(stack: Stack) -> None:
    user = f"ada-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="ada@example.com"))
    question = stack.question(user, [ChannelName.email], actions=ACTIONS)
    asking = asyncio.create_task(stack.client.ask(question))
    await eventually(lambda: stack.sendgrid.requests, "the email")
    route = f"/v1/notifications/{question.notification_id}/respond"

    # A text action without text, text for a button, text over 2000 characters: refused, naming `text`, never
    # quoting it; the question stays open.
    missing = await stack.api.post(route, json={"action_id": "reply"})
    assert missing.status_code == 422
    assert (missing.json()["error"]["code"], missing.json()["error"]["field"]) == ("invalid_text", "text")
    assert missing.json()["error"]["message"] == "text: is required, action reply is answered in words"
    button = await stack.api.post(route, json={"action_id": "approve", "text": "yes please"})
    assert button.status_code == 422 and button.json()["error"]["field"] == "text"
    assert "yes please" not in button.text and button.json()["error"]["message"].startswith("text: only an action")
    ack = await stack.api.post(route, json={"action_id": "ack", "text": "seen"})
    assert ack.status_code == 422 and ack.json()["error"]["code"] == "invalid_text"
    too_long = await stack.api.post(route, json={"action_id": "reply", "text": "é" * 2001})
    assert too_long.status_code == 422 and too_long.json()["error"]["field"] == "text"
    assert "2001 characters; the limit is 2000" in too_long.text and "éé" not in too_long.text
    blank = await stack.api.post(route, json={"action_id": "reply", "text": "   "})
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "text"
    assert not asking.done()

    # 2000 characters, counted as characters (an emoji is one), are taken.
    answered = await stack.api.post(route, json={"action_id": "reply", "text": f"  {WORDS}  "})
    assert answered.status_code == 200, answered.text
    assert (answered.json()["action_id"], answered.json()["text"], answered.json()["channel"]) == (
        "reply",
        WORDS,
        "api",
    )
    outcome = await asking
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.text) == ("reply", WORDS)
    # Kept in the store's outcome too (the audit API reads it), like the body.
    view = (await stack.api.get(f"/v1/notifications/{question.notification_id}")).json()
    assert view["answer"]["text"] == WORDS and view["actions"][1] == {"id": "reply", "label": "Reply", "input": "text"}
    assert view["actions"][0] == {"id": "approve", "label": "Approve"}  # a button reads as it always did


async def test_the_longest_text_is_taken_and_the_client_refuses_one_character_more(stack: Stack) -> None:
    user = f"bo-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="bo@example.com"))
    question = stack.question(user, [ChannelName.email], actions=[REPLY])
    asking = asyncio.create_task(stack.client.ask(question))
    await eventually(lambda: stack.sendgrid.requests, "the email")
    with pytest.raises(ValueError, match="text: is 2001 characters; the limit is 2000"):
        await stack.client.respond(question.notification_id, "reply", user, text="🚀" * 2001)
    with pytest.raises(AnswerRefused) as refused:
        await stack.client.respond(question.notification_id, "reply", user)
    assert refused.value.code == "invalid_text"
    answer = await stack.client.respond(question.notification_id, "reply", user, text="🚀" * 2000)
    assert answer.text == "🚀" * 2000
    outcome = await asking
    assert outcome.answer is not None and outcome.answer.text == "🚀" * 2000


async def test_a_text_answer_over_the_websocket(stack: Stack) -> None:
    user = f"cy-{uuid.uuid4().hex[:6]}"
    token = await issue_token(stack.store, "user", user)
    question = stack.question(user, [ChannelName.push], actions=ACTIONS)
    async with connect(f"ws://127.0.0.1:{stack.port}/v1/ws?token={token}") as ws:
        assert (await recv_json(ws))["type"] == "ready"
        asking = asyncio.create_task(stack.client.ask(question))
        frame = await recv_json(ws)
        assert frame["actions"][1] == {"id": "reply", "label": "Reply", "input": "text"}
        await ws.send(json.dumps({"type": "ack", "notification_id": question.notification_id}))
        respond = {"type": "respond", "notification_id": question.notification_id, "action_id": "reply"}

        await ws.send(json.dumps(respond))
        missing = await recv_json(ws)
        assert (missing["accepted"], missing["code"]) == (False, "invalid_text")
        await ws.send(json.dumps(respond | {"text": 42}))
        assert (await recv_json(ws))["message"].startswith("text: must be a string")
        await ws.send(json.dumps(respond | {"text": "x" * 2001}))
        long = await recv_json(ws)
        assert (long["accepted"], long["reason"]) == (False, "text: is 2001 characters; the limit is 2000")
        await ws.send(json.dumps(respond | {"text": "\ud800 lone"}))
        surrogate = await recv_json(ws)
        assert surrogate["accepted"] is False and surrogate["reason"].startswith("text: holds a lone UTF-16 surrogate")

        await ws.send(json.dumps(respond | {"text": WORDS}))
        response = await recv_json(ws)
        assert response["accepted"] is True, response
        assert (response["answer"]["text"], response["answer"]["channel"]) == (WORDS, "push")
    outcome = await asking
    assert outcome.answer is not None and (outcome.answer.text, outcome.answer.channel) == (WORDS, AnswerChannel.push)


async def test_an_sms_reply_that_is_not_a_number_is_the_text(stack: Stack) -> None:
    user = f"di-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(phone=PHONE))
    question = stack.question(user, [ChannelName.sms], actions=ACTIONS)
    asking = asyncio.create_task(stack.client.ask(question))
    await eventually(lambda: stack.twilio.requests, "the SMS")
    body = stack.twilio.requests[0].one("Body")
    assert body is not None and body.endswith("\nReply 1 for Approve, or your words for Reply")

    # The text action's number alone carries no words: refused, and the question stays open.
    number = await twilio_post(stack.api, inbound("2"))
    assert "not taken, text: is required" in number.text
    reply = await twilio_post(stack.api, inbound(f" {WORDS} "))
    assert reply.status_code == 200 and "<Message>Herald: got it, Reply.</Message>" in reply.text
    outcome = await asking
    assert outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.text, outcome.answer.channel) == (
        "reply",
        WORDS,
        AnswerChannel.sms,
    )


async def test_an_sms_reply_to_a_button_question_still_picks_by_number(stack: Stack) -> None:
    user = f"ed-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(phone=PHONE))
    question = stack.question(user, [ChannelName.sms], actions=ACTIONS)
    asking = asyncio.create_task(stack.client.ask(question))
    await eventually(lambda: stack.twilio.requests, "the SMS")
    reply = await twilio_post(stack.api, inbound("1"))
    assert "got it, Approve" in reply.text
    outcome = await asking
    assert outcome.answer is not None and (outcome.answer.action_id, outcome.answer.text) == ("approve", None)


async def test_the_email_answer_page_has_a_text_box_and_posts_its_words(stack: Stack) -> None:
    user = f"fi-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="fi@example.com"))
    question = stack.question(user, [ChannelName.email], actions=ACTIONS)
    asking = asyncio.create_task(stack.client.ask(question))
    await eventually(lambda: stack.sendgrid.requests, "the email")
    links = email_links(stack.sendgrid)
    assert set(links) == {"Approve", "Reply"}

    button_page = await stack.api.get(links["Approve"])
    assert button_page.status_code == 200 and "<textarea" not in button_page.text
    page = await stack.api.get(links["Reply"])
    assert page.status_code == 200 and "Answer <strong>Reply</strong>?" in page.text
    assert '<textarea id="text" name="text" rows="5" maxlength="2000" required' in page.text

    empty = await stack.api.post(links["Reply"], data={"confirm": "1", "text": ""})
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "text"
    answered = await stack.api.post(links["Reply"], data={"confirm": "1", "text": WORDS})
    assert answered.status_code == 200 and "your answer to “Reply” reached the agent" in answered.text
    assert WORDS not in answered.text
    outcome = await asking
    assert outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.text, outcome.answer.channel) == (
        "reply",
        WORDS,
        AnswerChannel.email,
    )


async def test_a_webhooks_respond_url_takes_text(stack: Stack, fake_http: FakeHTTPServer) -> None:
    user = f"gu-{uuid.uuid4().hex[:6]}"
    hook = f"/answers/{user}"
    await stack.store.users.put_contact(user, Contact(webhook_url=fake_http.script(hook, 204)))
    question = stack.question(user, [ChannelName.webhook], actions=ACTIONS)
    asking = asyncio.create_task(stack.client.ask(question))
    [delivered] = await eventually(lambda: fake_http.received(hook), "the webhook")
    event = Webhook(WEBHOOK_SECRET).verify(delivered.body, dict(delivered.headers.items()))
    path = event["data"]["respond_url"].removeprefix(PUBLIC_URL)

    refused = await stack.api.post(path, json={"action_id": "reply"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_text"
    too_long = await stack.api.post(path, json={"action_id": "reply", "text": "x" * 2001})
    assert too_long.status_code == 422
    assert (too_long.json()["error"]["field"], too_long.json()["error"]["message"]) == (
        "text",
        "text: is 2001 characters; the limit is 2000",
    )
    answered = await stack.api.post(path, json={"action_id": "reply", "text": WORDS})  # a refusal left it usable
    assert answered.status_code == 200 and answered.json()["text"] == WORDS
    outcome = await asking
    assert outcome.answer is not None and (outcome.answer.text, outcome.answer.channel) == (
        WORDS,
        AnswerChannel.webhook,
    )


async def test_the_text_is_not_in_the_history_in_clear_with_the_codec(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """With HERALD_CODEC_KEYS the words travel only encrypted: the update's input and result, the outcome, the
    callback. Read raw (what Temporal keeps), the history holds no trace of them; read through the codec, it does."""
    task_queue = f"text-codec-{uuid.uuid4().hex[:12]}"
    secret_words = "Refund card ending 4242 for Ada Lovelace, tell nobody"
    async with fake_providers() as (sendgrid, _):
        target = temporal_env.client.service_client.config.target_host
        settings = make_settings(
            tmp_path / "herald",
            temporal_address=target,
            TEMPORAL_NAMESPACE=temporal_env.client.namespace,
            codec_keys=K1.entry(),
            public_url=PUBLIC_URL,
            answer_secret=ANSWER_SECRET,
            SENDGRID_API_KEY="SG.answers",
            SENDGRID_API_HOST=sendgrid.host,
        )
        client = await connect_temporal(settings)
        plain = await Client.connect(target, namespace=temporal_env.client.namespace)
        async with codec_worker(client, settings, task_queue) as (herald, store):
            user = f"hy-{uuid.uuid4().hex[:6]}"
            await store.users.put_contact(user, Contact(email="hy@example.com"))
            question = AgentNotification(
                agent_id="refund-agent",
                user_id=user,
                title="Anything to add to the refund?",
                channels=[ChannelName.email],
                actions=ACTIONS,
                respond_by=utcnow() + timedelta(minutes=10),
            )
            asking = asyncio.create_task(herald.ask(question))
            await eventually(lambda: sendgrid.requests, "the email")
            answer = await herald.respond(question.notification_id, "reply", user, text=secret_words)
            assert answer.text == secret_words
            outcome = await asking
            assert outcome.answer is not None and outcome.answer.text == secret_words
        history = await plain.get_workflow_handle(question.workflow_id).fetch_history()
        raw = clear_text(history.to_json())
        assert "respond" in raw, "the update is in the history"
        for piece in (secret_words, "4242", "Lovelace"):
            assert piece not in raw, "the answer's text in the raw history"
        decoded = await client.get_workflow_handle(question.workflow_id).fetch_history()
        accepted = [
            e.workflow_execution_update_accepted_event_attributes
            for e in decoded.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]
        [payload] = accepted[0].accepted_request.input.args.payloads
        assert payload.metadata["encryption-key-id"] == b"k1"
        [request] = await client.data_converter.decode([payload])
        assert request["text"] == secret_words
