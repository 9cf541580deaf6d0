"""How each channel offers an action answered in words (`input: "text"`): the SMS prompt asks for words, push
frames and webhooks carry `input`, Web Push marks it a `type: text` action; buttons render as before."""

from __future__ import annotations

import json

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.render import push_frame, sms_payload, webhook_body
from herald.adapters.channels.webpush import webpush_payload
from herald.models import AgentNotification, ChannelName, Contact, Priority

RESPOND_URL = "https://h.example/v1/answers/tok-any"


def message(channel: ChannelName, **extra: object) -> OutboundMessage:
    n = AgentNotification.model_validate(
        {
            "notification_id": "q-2",
            "agent_id": "deploy-agent",
            "user_id": "ada",
            "title": "Deploy the fix to production?",
            "body": "Build 412 passed.",
            "priority": Priority.high,
            "actions": [{"id": "approve", "label": "Approve"}, {"id": "reply", "label": "Reply", "input": "text"}],
        }
    )
    contact = Contact(email="ada@example.com", phone="+14155550100", webhook_url="https://hooks.example/h")
    return OutboundMessage(n, channel, f"{n.workflow_id}/{channel.value}", contact, **extra)  # type: ignore[arg-type]


def test_sms_asks_for_words() -> None:
    body = sms_payload(message(ChannelName.sms), "+14155550199")["Body"]
    assert body.endswith("\nReply 1 for Approve, or your words for Reply")


def test_push_frames_and_webhooks_carry_the_input() -> None:
    actions = [{"id": "approve", "label": "Approve"}, {"id": "reply", "label": "Reply", "input": "text"}]
    assert push_frame(message(ChannelName.push))["actions"] == actions
    data = webhook_body(message(ChannelName.webhook, respond_url=RESPOND_URL))["data"]
    assert data["actions"] == actions and data["respond_url"] == RESPOND_URL


def test_web_push_marks_a_text_action() -> None:
    payload = json.loads(webpush_payload(message(ChannelName.push, respond_url=RESPOND_URL)))
    assert payload["actions"] == [
        {"action": "approve", "title": "Approve"},
        {"action": "reply", "title": "Reply", "type": "text"},
    ]
