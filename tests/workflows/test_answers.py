"""Asking a person, end to end: a question goes out on a channel, the person answers there, the waiting agent
gets the answer. Real Temporal dev server and worker, the real API on loopback (uvicorn, for the WebSocket),
the real SendGrid and Twilio client libraries against the loopback fakes, Twilio's own request signing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.config import Settings
from herald.domain.answers import AnswerToken, sign_token
from herald.models import (
    Action,
    AgentNotification,
    AnswerChannel,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationOutcome,
    NotificationRequest,
    NotificationStatus,
    Preferences,
    Priority,
    utcnow,
)
from herald.services.auth import issue_token
from starter import AnswerRefused, AnswerTimeout, HeraldClient
from tests.channels.test_websocket import recv_json, serve
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, make_settings
from tests.fakes.http import FakeHTTPServer, start_fake
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.workflows.approval_agent import ApprovalAgentWorkflow
from worker import Runtime, create_worker, open_runtime

ACCOUNT_SID = "AC" + "a5c0" * 8
AUTH_TOKEN = "twilio-answers-token"
PUBLIC_URL = "https://herald.example.com"
ANSWER_SECRET = "answer-secret-for-tests-only"
PHONE = "+14155550123"
ACTIONS = [Action(id="approve", label="Approve"), Action(id="deny", label="Deny")]


def deploy_question(user: str, channels: list[ChannelName], **fields: Any) -> AgentNotification:
    """The deploy agent's approval question to `user` on `channels`, due in ten minutes; `fields` override."""
    values: dict[str, Any] = {
        "agent_id": "deploy-agent",
        "user_id": user,
        "title": "Deploy the fix to production?",
        "priority": Priority.high,
        "channels": channels,
        "actions": ACTIONS,
        "respond_by": utcnow() + timedelta(minutes=10),
    }
    values.update(fields)
    return AgentNotification.model_validate(values)


@dataclass
class Stack:
    client: HeraldClient
    store: Store
    settings: Settings
    sendgrid: FakeSendGrid
    twilio: FakeTwilio
    api: httpx.AsyncClient
    port: int
    task_queue: str

    def question(self, user: str, channels: list[ChannelName], **fields: Any) -> AgentNotification:
        return deploy_question(user, channels, **fields)


@contextlib.asynccontextmanager
async def running_worker(env: WorkflowEnvironment, settings: Settings, task_queue: str) -> AsyncIterator[Runtime]:
    async with (
        open_runtime(settings) as runtime,
        create_worker(
            env.client,
            runtime,
            task_queue,
            workflow_failure_exception_types=[Exception],
            extra_workflows=[ApprovalAgentWorkflow],
        ),
    ):
        yield runtime


def answer_settings(home: Path, sendgrid: FakeSendGrid, twilio: FakeTwilio) -> Settings:
    return make_settings(
        home,
        public_url=PUBLIC_URL,
        answer_secret=ANSWER_SECRET,
        SENDGRID_API_KEY="SG.answers",
        SENDGRID_API_HOST=sendgrid.host,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM="+14155550199",
        TWILIO_API_BASE=twilio.base_url,
    )


@contextlib.asynccontextmanager
async def fake_providers() -> AsyncIterator[tuple[FakeSendGrid, FakeTwilio]]:
    sendgrid, twilio = FakeSendGrid(), FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    sg_server, sg_task, sendgrid.port = await start_fake(sendgrid)
    tw_server, tw_task, twilio.port = await start_fake(twilio)
    try:
        yield sendgrid, twilio
    finally:
        for server, task in ((sg_server, sg_task), (tw_server, tw_task)):
            server.should_exit = True
            await task


@contextlib.asynccontextmanager
async def serve_api(settings: Settings, client: HeraldClient, runtime: Runtime) -> AsyncIterator[int]:
    app = create_app(settings, store=runtime.store, client=client, hub=runtime.hub)
    async with serve(app) as port:
        yield port


async def eventually(check: Any, what: str) -> Any:
    """Poll `check()` until it returns something truthy (a bounded wait, not a timing assertion)."""
    for _ in range(400):
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.025)
    raise AssertionError(f"gave up waiting for {what}")


def email_links(sendgrid: FakeSendGrid) -> dict[str, str]:
    """The answer links in the one email sent, by label, as paths on Herald's API."""
    [mail] = sendgrid.requests
    text = mail.json()["content"][0]["value"]
    return {label: url.removeprefix(PUBLIC_URL) for label, url in re.findall(r"  (\w+): (https://\S+)", text)}


def twilio_post(api: httpx.AsyncClient, form: dict[str, str], token: str = AUTH_TOKEN) -> Any:
    url = f"{PUBLIC_URL}/v1/providers/twilio/inbound"
    signature = RequestValidator(token).compute_signature(url, form)
    return api.post("/v1/providers/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature})


def inbound(body: str, phone: str = PHONE) -> dict[str, str]:
    return {"From": phone, "To": "+14155550199", "Body": body, "MessageSid": "SM" + uuid.uuid4().hex}


# --- answered on each channel ------------------------------------------------------------------------------------


async def test_an_approval_answered_by_email_link(stack: Stack) -> None:
    user = f"ada-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="ada@example.com"))
    question = stack.question(user, [ChannelName.email])
    asking = asyncio.create_task(stack.client.ask(question))

    await eventually(lambda: stack.sendgrid.requests, "the email")
    links = email_links(stack.sendgrid)
    assert set(links) == {"Approve", "Deny"}
    # Opening the link only shows a confirmation (mail scanners fetch links); the form's POST answers.
    page = await stack.api.get(links["Approve"])
    assert page.status_code == 200 and "Answer <strong>Approve</strong>?" in page.text
    assert not asking.done()
    answered = await stack.api.post(links["Approve"], data={"confirm": "1"})
    assert answered.status_code == 200 and "your answer “Approve” reached the agent" in answered.text

    outcome = await asking
    assert outcome.status is NotificationStatus.answered
    assert outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.user_id, outcome.answer.channel) == (
        "approve",
        user,
        AnswerChannel.email,
    )
    assert outcome.channels[ChannelName.email].status is ChannelStatus.delivered

    # The same link again: single-use. The other link: the question is already answered (and that is recorded).
    reused = await stack.api.post(links["Approve"], data={"confirm": "1"})
    assert reused.status_code == 409 and "already used" in reused.text
    late = await stack.api.post(links["Deny"], json={"action_id": "deny"})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "already_answered"
    assert late.json()["error"]["message"].startswith("already answered: approve via email at ")
    view = (await stack.api.get(f"/v1/notifications/{question.notification_id}")).json()
    assert view["status"] == "answered" and view["answer"]["action_id"] == "approve"
    assert [(r["action_id"], r["channel"]) for r in view["refused_answers"]] == [("deny", "email")]


async def test_an_approval_answered_by_sms_reply(stack: Stack) -> None:
    user = f"bo-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(phone=PHONE))
    older = stack.question(user, [ChannelName.sms], title="Rotate the keys?")
    await stack.client.notify(older)
    await eventually(lambda: len(stack.twilio.requests) == 1, "the first SMS")
    question = stack.question(user, [ChannelName.sms])
    asking = asyncio.create_task(stack.client.ask(question))
    await eventually(lambda: len(stack.twilio.requests) == 2, "the second SMS")
    body = stack.twilio.requests[1].one("Body")
    assert body is not None and body.endswith("\nReply 1 for Approve, 2 for Deny")

    # A forged request (signed with another token) is refused before anything is read.
    forged = await twilio_post(stack.api, inbound("2"), token="not-the-auth-token")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_signature"
    # A reply that matches no choice gets the prompt back and answers nothing.
    unclear = await twilio_post(stack.api, inbound("maybe"))
    assert unclear.status_code == 200 and "Reply 1 for Approve, 2 for Deny" in unclear.text
    # "1" answers the newest open question for this number.
    reply = await twilio_post(stack.api, inbound(" 1 "))
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/xml")
    assert "<Message>Herald: got it, Approve.</Message>" in reply.text

    outcome = await asking
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.channel) == ("approve", AnswerChannel.sms)
    # The next reply goes to the older question, still open.
    second = await twilio_post(stack.api, inbound("deny"))
    assert "got it, Deny" in second.text
    older_outcome = await stack.client.get_handle(older.notification_id).outcome()
    assert older_outcome.answer is not None and older_outcome.answer.action_id == "deny"
    nothing_open = await twilio_post(stack.api, inbound("1"))
    assert "no open question for this number" in nothing_open.text


async def test_an_approval_answered_in_the_websocket_inbox(stack: Stack) -> None:
    user = f"cy-{uuid.uuid4().hex[:6]}"
    token = await issue_token(stack.store, "user", user)
    other = await issue_token(stack.store, "user", f"mallory-{uuid.uuid4().hex[:6]}")
    question = stack.question(user, [ChannelName.push])
    async with (
        connect(f"ws://127.0.0.1:{stack.port}/v1/ws?token={token}") as ws,
        connect(f"ws://127.0.0.1:{stack.port}/v1/ws?token={other}") as intruder,
    ):
        assert (await recv_json(ws))["type"] == "ready"
        assert (await recv_json(intruder))["type"] == "ready"
        asking = asyncio.create_task(stack.client.ask(question))
        frame = await recv_json(ws)
        assert frame["type"] == "notification" and frame["notification_id"] == question.notification_id
        assert frame["actions"] == [{"id": "approve", "label": "Approve"}, {"id": "deny", "label": "Deny"}]
        await ws.send(json.dumps({"type": "ack", "notification_id": question.notification_id}))

        # Another user's socket cannot answer it (to that socket it doesn't exist); an action the question does not
        # offer is refused.
        await intruder.send(
            json.dumps({"type": "respond", "notification_id": question.notification_id, "action_id": "approve"})
        )
        refused = await recv_json(intruder)
        assert (refused["accepted"], refused["code"]) == (False, "not_found")
        await ws.send(json.dumps({"type": "respond", "notification_id": question.notification_id, "action_id": "ok"}))
        unknown = await recv_json(ws)
        assert (unknown["accepted"], unknown["code"]) == (False, "unknown_action")
        assert unknown["reason"] == "unknown action ok: this notification offers approve, deny, ack, snooze"

        await ws.send(json.dumps({"type": "respond", "notification_id": question.notification_id, "action_id": "deny"}))
        response = await recv_json(ws)
        assert response["type"] == "response" and response["accepted"] is True
        assert response["answer"]["channel"] == "push"

    outcome = await asking
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.user_id) == ("deny", user)


# --- refusals ---------------------------------------------------------------------------------------------------


async def test_forged_expired_and_other_user_answers_are_refused(stack: Stack) -> None:
    user = f"di-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="di@example.com"))
    question = stack.question(user, [ChannelName.email])
    handle = await stack.client.notify(question)
    await eventually(lambda: stack.sendgrid.requests, "the email")
    links = email_links(stack.sendgrid)

    # Forged: a link signed with another secret, and a real link with its action swapped.
    forged_token = sign_token(
        b"not-the-secret",
        AnswerToken(question.notification_id, "approve", int(utcnow().timestamp()) + 600, "n-forged"),
    )
    forged = await stack.api.post(f"/v1/answers/{forged_token}", json={"action_id": "approve"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "link_forged"
    approve_token = links["Approve"].rsplit("/", 1)[1]
    swapped = await stack.api.post(f"/v1/answers/{approve_token}", json={"action_id": "deny"})
    assert swapped.status_code == 422 and "another action" in swapped.json()["error"]["message"]
    # Expired: signed with the right secret, but its time is up.
    expired_token = sign_token(
        ANSWER_SECRET.encode(),
        AnswerToken(question.notification_id, "approve", int(utcnow().timestamp()) - 1, secrets.token_hex(8)),
    )
    expired = await stack.api.post(f"/v1/answers/{expired_token}", data={"confirm": "1"})
    assert expired.status_code == 410 and "expired" in expired.text
    # Another user, and an unknown action, through the client: refused with the reason.
    with pytest.raises(AnswerRefused) as other_user:
        await stack.client.respond(question.notification_id, "approve", "mallory", AnswerChannel.api)
    assert other_user.value.code == "not_recipient"
    with pytest.raises(AnswerRefused) as unknown:
        await stack.client.respond(question.notification_id, "maybe", user)
    assert unknown.value.code == "unknown_action"

    assert (await handle.status()).answer is None  # nothing above answered it
    answer = await stack.client.respond(question.notification_id, "approve", user)
    assert answer.channel is AnswerChannel.api
    outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.answered
    refused = await stack.store.answers.refusals(question.notification_id)
    assert [r.reason for r in refused] == [
        "only the notified user may answer this notification",
        "unknown action maybe: this notification offers approve, deny, ack, snooze",
    ]


async def test_the_deadline_passing_gives_expired(stack: Stack) -> None:
    user = f"ed-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="ed@example.com"))
    question = stack.question(user, [ChannelName.email], respond_by=utcnow() + timedelta(seconds=2))
    outcome = await stack.client.ask(question)
    assert outcome.status is NotificationStatus.expired and outcome.answer is None
    with pytest.raises(AnswerRefused) as late:
        await stack.client.respond(question.notification_id, "approve", user)
    assert late.value.code == "too_late"
    # A deadline already past is refused up front.
    with pytest.raises(ValueError, match="respond_by: must be in the future"):
        await stack.client.ask(stack.question(user, [ChannelName.email], respond_by=utcnow() - timedelta(seconds=1)))
    refused = await stack.api.post(
        "/v1/notifications",
        json={
            "agent_id": "deploy-agent",
            "user_id": user,
            "title": "Too late",
            "actions": [{"id": "ok", "label": "OK"}],
            "respond_by": (utcnow() - timedelta(seconds=1)).isoformat(),
        },
    )
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "respond_by"


async def test_an_ack_keeps_the_question_open_and_a_critical_expiry_alerts_ops(stack: Stack) -> None:
    user = f"fa-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="fa@example.com"))
    unacked = stack.question(
        user, [ChannelName.email], priority=Priority.critical, respond_by=utcnow() + timedelta(seconds=2)
    )
    acked = stack.question(
        user,
        [ChannelName.email],
        priority=Priority.critical,
        title="Restart the primary?",
        respond_by=utcnow() + timedelta(seconds=2),
    )
    unacked_handle, acked_handle = await stack.client.notify(unacked), await stack.client.notify(acked)
    await eventually(lambda: len(stack.sendgrid.requests) >= 2, "both emails")
    ack = await stack.client.respond(acked.notification_id, "ack", user)
    assert ack.action_id == "ack"
    with pytest.raises(AnswerRefused) as twice:
        await stack.client.respond(acked.notification_id, "ack", user, AnswerChannel.email)
    assert twice.value.code == "already_acknowledged"

    acked_outcome, unacked_outcome = await acked_handle.outcome(), await unacked_handle.outcome()
    assert acked_outcome.status is NotificationStatus.expired and acked_outcome.acknowledged is not None
    assert [r.channel for r in acked_outcome.refused_answers] == [AnswerChannel.email]  # kept in the outcome
    assert acked_outcome.ops_alert is None  # acked: somebody is on it
    assert await stack.store.notifications.ops_alerts(acked.notification_id) == []
    assert unacked_outcome.status is NotificationStatus.expired
    assert unacked_outcome.ops_alert is not None and "nobody answered" in unacked_outcome.ops_alert
    assert [a["kind"] for a in await stack.store.notifications.ops_alerts(unacked.notification_id)] == [
        "question_expired"
    ]


async def test_snooze_mutes_the_rule_for_that_user_for_an_hour(stack: Stack) -> None:
    user = f"gi-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="gi@example.com"))

    def fired(title: str, priority: Priority = Priority.high) -> AgentNotification:
        return AgentNotification(
            agent_id="checkout-agent",
            user_id=user,
            title=title,
            priority=priority,
            channels=[ChannelName.email],
            metadata={"rule": "checkout-errors"},
        )

    first = fired("Error rate 7%")
    assert (await (await stack.client.notify(first)).outcome()).status is NotificationStatus.delivered
    # The notification has finished; its snooze still takes, and holds (it is in the store).
    snoozed = await stack.client.respond(first.notification_id, "snooze", user, AnswerChannel.push)
    assert snoozed.action_id == "snooze"
    muted = await (await stack.client.notify(fired("Error rate 9%"))).outcome()
    assert muted.status is NotificationStatus.no_channel and muted.snoozed_until is not None
    assert abs((muted.snoozed_until - (snoozed.answered_at + timedelta(hours=1))).total_seconds()) < 1
    # Critical gets through; so does another rule, and another user.
    assert (await (await stack.client.notify(fired("Down", Priority.critical))).outcome()).snoozed_until is None
    other_rule = fired("Latency").model_copy(update={"metadata": {"rule": "latency"}})
    assert (await (await stack.client.notify(other_rule)).outcome()).status is NotificationStatus.delivered


# --- durability ---------------------------------------------------------------------------------------------------


async def test_a_worker_restart_while_waiting_loses_nothing(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    task_queue = f"answers-restart-{uuid.uuid4().hex[:8]}"
    user = f"hu-{uuid.uuid4().hex[:6]}"
    async with fake_providers() as (sendgrid, twilio):
        settings = answer_settings(tmp_path / "herald", sendgrid, twilio)
        client = HeraldClient(temporal_env.client, task_queue, FAST_POLICY)
        question = AgentNotification(
            agent_id="deploy-agent",
            user_id=user,
            title="Ship it?",
            channels=[ChannelName.email],
            actions=ACTIONS,
            respond_by=utcnow() + timedelta(minutes=10),
        )
        async with running_worker(temporal_env, settings, task_queue) as runtime:
            await runtime.store.users.put_contact(user, Contact(email="hu@example.com"))
            handle = await client.notify(question)
            await eventually(lambda: sendgrid.requests, "the email")
            status = await eventually(
                lambda: _delivered(handle.status), "the email channel delivered (the workflow now waits)"
            )
            assert status.status is NotificationStatus.pending
        # No worker at all now. A new one (a fresh process's cache) picks the question up from its history.
        async with running_worker(temporal_env, settings, task_queue) as runtime:
            restarted = HeraldClient(temporal_env.client, task_queue, FAST_POLICY, store=runtime.store)
            async with serve_api(settings, restarted, runtime) as port:
                link = email_links(sendgrid)["Approve"]
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
                    answered = await api.post(link, data={"confirm": "1"})
                assert answered.status_code == 200, answered.text
            outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert outcome.answer.action_id == "approve"
    assert len(sendgrid.requests) == 1  # nothing was sent twice


async def _delivered(status: Any) -> NotificationOutcome | None:
    outcome: NotificationOutcome = await status()
    email = outcome.channels.get(ChannelName.email)
    return outcome if email is not None and email.status is ChannelStatus.delivered else None


async def test_an_agent_workflow_asks_as_a_child_and_awaits_the_answer(stack: Stack) -> None:
    user = f"io-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="io@example.com"))
    question = stack.question(user, [ChannelName.email])
    agent = await stack.client.temporal.start_workflow(
        ApprovalAgentWorkflow.run,
        NotificationRequest(notification=question, policy=FAST_POLICY),
        id=f"agent/{question.notification_id}",
        task_queue=stack.task_queue,
    )
    await eventually(lambda: stack.sendgrid.requests, "the email")
    await eventually(lambda: _delivered(stack.client.get_handle(question.notification_id).status), "delivery")
    await stack.client.respond(question.notification_id, "approve", user, AnswerChannel.email)
    assert await agent.result() == f"approve by {user} via email"


async def test_an_approval_answered_through_the_webhooks_respond_url(stack: Stack, fake_http: FakeHTTPServer) -> None:
    """A receiving system (a chat bot, a ticket tool) gets the question signed, and answers at its respond_url."""
    user = f"jo-{uuid.uuid4().hex[:6]}"
    hook = f"/answers/{user}"
    await stack.store.users.put_contact(user, Contact(webhook_url=fake_http.script(hook, 204)))
    question = stack.question(user, [ChannelName.webhook])
    asking = asyncio.create_task(stack.client.ask(question))
    [delivered] = await eventually(lambda: fake_http.received(hook), "the webhook")
    event = Webhook(WEBHOOK_SECRET).verify(delivered.body, dict(delivered.headers.items()))
    respond_url: str = event["data"]["respond_url"]
    assert respond_url.startswith(f"{PUBLIC_URL}/v1/answers/")
    path = respond_url.removeprefix(PUBLIC_URL)

    answered = await stack.api.post(path, json={"action_id": "approve"})
    assert answered.status_code == 200 and answered.json()["channel"] == "webhook"
    outcome = await asking
    assert outcome.answer is not None and outcome.answer.action_id == "approve"
    again = await stack.api.post(path, json={"action_id": "deny"})  # each link answers once
    assert again.status_code == 409 and again.json()["error"]["code"] == "link_used"


async def test_the_agent_is_called_back_with_the_answer(stack: Stack, fake_http: FakeHTTPServer) -> None:
    """An agent that doesn't wait gives a callback_url: Herald POSTs the answer there, signed like its webhooks."""
    user = f"ka-{uuid.uuid4().hex[:6]}"
    callback_path = f"/agent-callback/{user}"
    await stack.store.users.put_contact(user, Contact(email="ka@example.com"))
    url = fake_http.script(callback_path, 503, 200)  # the agent is briefly down: the callback is retried
    question = stack.question(user, [ChannelName.email], callback_url=url)
    handle = await stack.client.notify(question)
    await eventually(lambda: _delivered(handle.status), "delivery")
    await stack.client.respond(question.notification_id, "deny", user, AnswerChannel.api)
    assert (await handle.outcome()).status is NotificationStatus.answered
    first, second = fake_http.received(callback_path)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"{question.workflow_id}/callback"
    event = Webhook(WEBHOOK_SECRET).verify(second.body, dict(second.headers.items()))
    assert event["type"] == "notification.answered"
    assert event["data"]["answer"]["action_id"] == "deny" and event["data"]["answer"]["user_id"] == user
    with pytest.raises(ValueError, match="callback_url"):
        AgentNotification(agent_id="a", user_id=user, title="no question", callback_url=url)


async def test_a_refused_answer_leaves_the_link_usable(stack: Stack, fake_http: FakeHTTPServer) -> None:
    """A webhook's respond_url used to be marked used before the workflow had looked at the answer: an action the
    question doesn't offer was refused and burned the link, so the real answer after it got 409 `link_used`.
    Now the link is burned with the answer the workflow took, and only then."""
    user = f"lu-{uuid.uuid4().hex[:6]}"
    hook = f"/answers/{user}"
    await stack.store.users.put_contact(user, Contact(webhook_url=fake_http.script(hook, 204)))
    question = stack.question(user, [ChannelName.webhook])
    handle = await stack.client.notify(question)
    [delivered] = await eventually(lambda: fake_http.received(hook), "the webhook")
    event = Webhook(WEBHOOK_SECRET).verify(delivered.body, dict(delivered.headers.items()))
    path = str(event["data"]["respond_url"]).removeprefix(PUBLIC_URL)

    wrong = await stack.api.post(path, json={"action_id": "maybe"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "unknown_action"), wrong.text
    answered = await stack.api.post(path, json={"action_id": "approve"})
    assert answered.status_code == 200, answered.text
    assert (answered.json()["action_id"], answered.json()["channel"]) == ("approve", "webhook")
    outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert outcome.answer.action_id == "approve"
    again = await stack.api.post(path, json={"action_id": "deny"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "link_used")


async def test_no_worker_is_a_503_with_retry_after_and_the_link_answers_once_a_worker_is_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    """With no worker on the task queue, answering used to wait on the update forever (`HeraldClient.respond` set
    no RPC timeout, and neither it nor the API handled WorkflowUpdateRPCTimeoutOrCancelledError), and the link
    route burned the link first; the API gave up on its status query instead, with a 503 that said nothing of
    when to retry. Now the answer waits `HERALD_ANSWER_TIMEOUT_SECONDS`: a 503 `temporal_unavailable` with
    Retry-After from the API, AnswerTimeout from the client, the link still works, and once a worker is back the
    same link answers, once: the answer the server held while the worker was away and the retry are one."""
    task_queue = f"answers-down-{uuid.uuid4().hex[:8]}"
    user = f"nw-{uuid.uuid4().hex[:6]}"
    hook = f"/answers/{user}"
    async with fake_providers() as (sendgrid, twilio):
        settings = answer_settings(tmp_path / "herald", sendgrid, twilio).changed(answer_timeout_seconds=1.0)
        api_store = await Store.open(settings.resolved_database_url)
        client = HeraldClient(temporal_env.client, task_queue, FAST_POLICY, store=api_store)
        app = create_app(settings, store=api_store, client=client)
        try:
            async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
                async with running_worker(temporal_env, settings, task_queue) as runtime:
                    await runtime.store.users.put_contact(user, Contact(webhook_url=fake_http.script(hook, 204)))
                    question = AgentNotification(
                        agent_id="deploy-agent",
                        user_id=user,
                        title="Ship it?",
                        channels=[ChannelName.webhook],
                        actions=ACTIONS,
                        respond_by=utcnow() + timedelta(minutes=10),
                    )
                    handle = await client.notify(question)
                    [delivered] = await eventually(lambda: fake_http.received(hook), "the webhook")
                    await eventually(lambda: _delivered_on(handle.status, ChannelName.webhook), "delivery")
                event = Webhook(WEBHOOK_SECRET).verify(delivered.body, dict(delivered.headers.items()))
                path = str(event["data"]["respond_url"]).removeprefix(PUBLIC_URL)

                # No worker now.
                down = await api.post(path, json={"action_id": "approve"})
                assert down.status_code == 503, down.text
                assert down.json()["error"]["code"] == "temporal_unavailable"
                assert int(down.headers["Retry-After"]) > 0
                with pytest.raises(AnswerTimeout):
                    await client.respond(question.notification_id, "ack", user, rpc_timeout=timedelta(seconds=1))

                async with running_worker(temporal_env, settings, task_queue):
                    answered = await api.post(path, json={"action_id": "approve"})
                    assert answered.status_code == 200, answered.text
                    assert (answered.json()["action_id"], answered.json()["channel"]) == ("approve", "webhook")
                    outcome = await handle.outcome()
                    used = await api.post(path, json={"action_id": "approve"})
                assert (used.status_code, used.json()["error"]["code"]) == (409, "link_used")
        finally:
            await api_store.close()
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.channel) == ("approve", AnswerChannel.webhook)
    # One answer: the retry attached to the update the server held, so nothing came second.
    assert [r.action_id for r in outcome.refused_answers] == []


async def _delivered_on(status: Any, channel: ChannelName) -> NotificationOutcome | None:
    outcome: NotificationOutcome = await status()
    result = outcome.channels.get(channel)
    return outcome if result is not None and result.status is ChannelStatus.delivered else None


# --- duplicates, no channel, and the agent's callback on every ending ------------------------------------------


async def test_the_same_question_asked_twice_is_asked_once_and_both_askers_get_the_answer(
    stack: Stack, fake_http: FakeHTTPServer
) -> None:
    """An agent retrying `ask` within the dedup window used to get `suppressed_duplicate` and no answer (and its
    callback never fired); now the repeat waits for the first question's answer, and the person is asked once."""
    user = f"lu-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="lu@example.com"))
    callback_path = f"/agent-callback/{user}/repeat"
    url = fake_http.script(callback_path, 200)
    first = stack.question(user, [ChannelName.email])
    asking_first = asyncio.create_task(stack.client.ask(first))
    await eventually(lambda: stack.sendgrid.requests, "the email")
    repeat = stack.question(user, [ChannelName.email], callback_url=url)
    asking_repeat = asyncio.create_task(stack.client.ask(repeat))
    waiting = await eventually(
        lambda: _joined(stack.client, repeat.notification_id, first.notification_id), "the repeat waiting"
    )
    assert waiting.status is NotificationStatus.pending and not asking_first.done() and not asking_repeat.done()
    # The repeat takes no answer of its own: the question it repeats does.
    with pytest.raises(AnswerRefused) as elsewhere:
        await stack.client.respond(repeat.notification_id, "approve", user)
    assert elsewhere.value.code == "closed" and first.notification_id in elsewhere.value.reason

    await stack.client.respond(first.notification_id, "deny", user, AnswerChannel.email)
    first_outcome, repeat_outcome = await asking_first, await asking_repeat
    for outcome in (first_outcome, repeat_outcome):
        assert outcome.status is NotificationStatus.answered and outcome.answer is not None
        assert (outcome.answer.action_id, outcome.answer.user_id, outcome.answer.channel) == (
            "deny",
            user,
            AnswerChannel.email,
        )
    assert repeat_outcome.duplicate_of == first.notification_id and repeat_outcome.channels == {}
    # Asked once: one email reached SendGrid, for the first question.
    [mail] = stack.sendgrid.requests
    assert mail.json()["personalizations"][0]["custom_args"]["notification_id"] == first.notification_id
    [called] = fake_http.received(callback_path)
    event = Webhook(WEBHOOK_SECRET).verify(called.body, dict(called.headers.items()))
    assert event["type"] == "notification.answered" and event["data"]["notification_id"] == repeat.notification_id
    assert event["data"]["duplicate_of"] == first.notification_id and event["data"]["answer"]["action_id"] == "deny"

    # Asked again after the first has finished (still within the dedup window): the answer comes from the store.
    late = await stack.client.ask(stack.question(user, [ChannelName.email]))
    assert late.status is NotificationStatus.answered and late.duplicate_of == first.notification_id
    assert late.answer == first_outcome.answer
    assert len(stack.sendgrid.requests) == 1
    # Other choices make another question: it is asked.
    other = stack.question(user, [ChannelName.email], actions=[Action(id="yes", label="Yes")])
    await stack.client.notify(other)
    await eventually(lambda: len(stack.sendgrid.requests) == 2, "the other question's email")


async def _joined(client: HeraldClient, notification_id: str, original_id: str) -> NotificationOutcome | None:
    try:
        outcome = await client.get_handle(notification_id).status()
    except Exception:  # not started yet
        return None
    return outcome if outcome.duplicate_of == original_id else None


async def test_a_critical_question_that_reaches_nobody_alerts_ops_and_calls_back(
    stack: Stack, fake_http: FakeHTTPServer
) -> None:
    """A critical question with no channel left (the user turned every channel off) used to end `no_channel`
    with no ops alert and no callback; one whose every channel failed ended `unconfirmed` without an ops alert
    (a question's alert waited for an expiry that never came, as nothing reached anybody to wait for)."""
    off, unreachable = f"mo-{uuid.uuid4().hex[:6]}", f"nu-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_preferences(
        off,
        Preferences.model_validate({"default": {"push": False, "email": False, "sms": False, "webhook": False}}),
    )
    urls = {u: fake_http.script(f"/agent-callback/{u}", 200) for u in (off, unreachable)}
    nobody = stack.question(off, [ChannelName.email], priority=Priority.critical, callback_url=urls[off])
    no_contact = stack.question(
        unreachable, [ChannelName.email], priority=Priority.critical, callback_url=urls[unreachable]
    )
    outcome = await stack.client.ask(nobody)
    assert outcome.status is NotificationStatus.no_channel and outcome.channels == {}
    assert outcome.ops_alert == "critical question reached nobody: no channel is enabled for it"
    assert [a["kind"] for a in await stack.store.notifications.ops_alerts(nobody.notification_id)] == [
        "critical_no_channel"
    ]

    failed = await stack.client.ask(no_contact)  # no email address, no phone, no browser: every channel fails
    assert failed.status is NotificationStatus.unconfirmed and failed.delivered_channels == []
    assert [a["kind"] for a in await stack.store.notifications.ops_alerts(no_contact.notification_id)] == [
        "critical_unconfirmed"
    ]

    for user, question, status in ((off, nobody, "no_channel"), (unreachable, no_contact, "unconfirmed")):
        [called] = fake_http.received(f"/agent-callback/{user}")
        event = Webhook(WEBHOOK_SECRET).verify(called.body, dict(called.headers.items()))
        assert event["type"] == f"notification.{status}"
        assert event["data"]["notification_id"] == question.notification_id and event["data"]["answer"] is None


async def test_an_expired_question_its_duplicate_and_a_failed_one_call_the_agent_back(
    stack: Stack, fake_http: FakeHTTPServer
) -> None:
    """Every ending calls back: an expiry, a duplicate of a question that expires (it used to end
    `suppressed_duplicate` and never call back), and a question whose every channel failed."""
    user, unreachable = f"ob-{uuid.uuid4().hex[:6]}", f"pa-{uuid.uuid4().hex[:6]}"
    await stack.store.users.put_contact(user, Contact(email="ob@example.com"))
    paths = {kind: f"/agent-callback/{user}/{kind}" for kind in ("expired", "repeat", "failed")}
    urls = {kind: fake_http.script(path, 200) for kind, path in paths.items()}
    deadline = utcnow() + timedelta(seconds=2)
    expiring = stack.question(user, [ChannelName.email], respond_by=deadline, callback_url=urls["expired"])
    handle = await stack.client.notify(expiring)
    await eventually(lambda: stack.sendgrid.requests, "the email")
    repeat = stack.question(user, [ChannelName.email], respond_by=deadline, callback_url=urls["repeat"])
    failing = stack.question(unreachable, [ChannelName.email], callback_url=urls["failed"])  # no contact at all
    repeated, failed = await asyncio.gather(stack.client.ask(repeat), stack.client.ask(failing))
    assert (await handle.outcome()).status is NotificationStatus.expired
    assert repeated.status is NotificationStatus.expired and repeated.duplicate_of == expiring.notification_id
    assert failed.status is NotificationStatus.failed
    assert len(stack.sendgrid.requests) == 1
    for kind, question, status in (
        ("expired", expiring, "expired"),
        ("repeat", repeat, "expired"),
        ("failed", failing, "failed"),
    ):
        [called] = fake_http.received(paths[kind])
        event = Webhook(WEBHOOK_SECRET).verify(called.body, dict(called.headers.items()))
        assert event["type"] == f"notification.{status}", kind
        assert event["data"]["notification_id"] == question.notification_id and event["data"]["answer"] is None
    [called] = fake_http.received(paths["repeat"])
    assert json.loads(called.body)["data"]["duplicate_of"] == expiring.notification_id
