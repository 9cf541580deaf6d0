"""What each provider receives, built once: the outbox writes it, the real providers send it.

Each renderer raises ContactMissing when the user has no address for its channel.
"""

from __future__ import annotations

from typing import Any

from herald.channels.base import OutboundMessage
from herald.errors import ContactMissing

SMS_MAX_CHARS = 306  # two GSM-7 segments


def subject(message: OutboundMessage) -> str:
    n = message.notification
    return f"[{n.priority.value.upper()}] {n.title}"


def email_payload(message: OutboundMessage, sender: str) -> dict[str, Any]:
    """A SendGrid v3 /mail/send body."""
    if not message.contact.email:
        raise ContactMissing("the user has no email address on file")
    n = message.notification
    return {
        "personalizations": [{"to": [{"email": message.contact.email}]}],
        "from": {"email": sender},
        "subject": subject(message),
        "content": [{"type": "text/plain", "value": n.body or n.title}],
        "custom_args": {"idempotency_key": message.idempotency_key, "notification_id": n.notification_id},
    }


def sms_payload(message: OutboundMessage, sender: str | None) -> dict[str, Any]:
    """A Twilio Messages.create body, cut to at most two segments."""
    if not message.contact.phone:
        raise ContactMissing("the user has no phone number on file")
    n = message.notification
    text = f"{subject(message)}: {n.body}" if n.body else subject(message)
    if len(text) > SMS_MAX_CHARS:
        text = text[: SMS_MAX_CHARS - 1] + "…"
    return {"To": message.contact.phone, "From": sender, "Body": text}


def push_frame(message: OutboundMessage) -> dict[str, Any]:
    """The frame a connected client receives and acks by notification_id."""
    return {"type": "notification", **notification_fields(message)}


def webhook_body(message: OutboundMessage) -> dict[str, Any]:
    """A Standard Webhooks event body."""
    n = message.notification
    return {"type": "notification.created", "timestamp": n.created_at.isoformat(), "data": notification_fields(message)}


def webhook_outbox_payload(message: OutboundMessage) -> dict[str, Any]:
    """The webhook as it would be posted: where to, its webhook-id, and its body."""
    if not message.contact.webhook_url:
        raise ContactMissing("the user has no webhook URL on file")
    return {"url": message.contact.webhook_url, "webhook-id": message.idempotency_key, "body": webhook_body(message)}


def notification_fields(message: OutboundMessage) -> dict[str, Any]:
    n = message.notification
    return {
        "notification_id": n.notification_id,
        "agent_id": n.agent_id,
        "user_id": n.user_id,
        "title": n.title,
        "body": n.body,
        "priority": n.priority.value,
        "metadata": n.metadata,
        "created_at": n.created_at.isoformat(),
    }
