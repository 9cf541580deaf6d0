"""How each channel offers a question's actions: links in email, a numbered prompt in SMS, buttons in push
frames and Web Push, a signed respond_url in webhooks. A notification without actions renders as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.render import email_bodies, push_frame, sms_payload, webhook_body
from herald.adapters.channels.webpush import webpush_payload
from herald.models import AgentNotification, ChannelName, Contact, Priority

RESPOND_BY = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)
URLS = {"approve": "https://h.example/v1/answers/tok-a", "deny": "https://h.example/v1/answers/tok-d"}
RESPOND_URL = "https://h.example/v1/answers/tok-any"


def message(channel: ChannelName, asks: bool = True, **extra: object) -> OutboundMessage:
    values: dict[str, object] = {
        "notification_id": "q-1",
        "agent_id": "deploy-agent",
        "user_id": "ada",
        "title": "Deploy the fix to production?",
        "body": "Build 412 passed.",
        "priority": Priority.high,
    }
    if asks:
        values["actions"] = [{"id": "approve", "label": "Approve"}, {"id": "deny", "label": "Deny"}]
        values["respond_by"] = RESPOND_BY
    n = AgentNotification.model_validate(values)
    contact = Contact(email="ada@example.com", phone="+14155550100", webhook_url="https://hooks.example/h")
    return OutboundMessage(n, channel, f"{n.workflow_id}/{channel.value}", contact, **extra)  # type: ignore[arg-type]


def test_email_offers_one_link_per_action() -> None:
    text, html = email_bodies(message(ChannelName.email, action_urls=URLS), None)
    assert "Answer by 2026-11-21T17:00:00+00:00 (each link works once):" in text
    assert f"  Approve: {URLS['approve']}\n" in text and f"  Deny: {URLS['deny']}\n" in text
    assert f'href="{URLS["approve"]}"' in html and ">Deny</a>" in html


def test_email_without_links_points_to_the_inbox() -> None:
    text, _ = email_bodies(message(ChannelName.email), None)
    assert "Answer in the Herald inbox by 2026-11-21T17:00:00+00:00." in text
    plain, _ = email_bodies(message(ChannelName.email, asks=False), None)
    assert "Answer" not in plain


def test_sms_keeps_the_numbered_prompt_whole() -> None:
    body = sms_payload(message(ChannelName.sms), "+14155550199")["Body"]
    assert body == "[HIGH] Deploy the fix to production?: Build 412 passed.\nReply 1 for Approve, 2 for Deny"
    long = message(ChannelName.sms)
    long = OutboundMessage(
        long.notification.model_copy(update={"body": "word " * 200}), long.channel, long.idempotency_key, long.contact
    )
    assert sms_payload(long, None)["Body"].endswith("...\nReply 1 for Approve, 2 for Deny")


def test_push_frames_carry_the_buttons() -> None:
    frame = push_frame(message(ChannelName.push))
    assert frame["actions"] == [{"id": "approve", "label": "Approve"}, {"id": "deny", "label": "Deny"}]
    assert frame["respond_by"] == RESPOND_BY.isoformat()
    assert "actions" not in push_frame(message(ChannelName.push, asks=False))


def test_web_push_carries_notification_api_actions_and_the_respond_url() -> None:
    payload = json.loads(webpush_payload(message(ChannelName.push, respond_url=RESPOND_URL)))
    assert payload["actions"] == [{"action": "approve", "title": "Approve"}, {"action": "deny", "title": "Deny"}]
    assert payload["respond_url"] == RESPOND_URL


def test_webhooks_carry_a_signed_respond_url() -> None:
    data = webhook_body(message(ChannelName.webhook, respond_url=RESPOND_URL))["data"]
    assert data["respond_url"] == RESPOND_URL and [a["id"] for a in data["actions"]] == ["approve", "deny"]
    plain = webhook_body(message(ChannelName.webhook, asks=False))["data"]
    assert "respond_url" not in plain and "actions" not in plain
