"""What each provider receives, built once: the outbox writes it, the real providers send it.

Each renderer raises ContactMissing when the user has no address for its channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.sms_text import fit_sms
from herald.config import split_sender
from herald.domain.answers import sms_prompt
from herald.domain.errors import ContactMissing
from herald.domain.unsubscribe import ONE_CLICK_POST, scope_of, what_it_stops
from herald.models import Priority


def subject(message: OutboundMessage) -> str:
    n = message.notification
    return f"[{n.priority.value.upper()}] {n.title}"


# Only the HTML template is escaped: agent text must not become markup there, and must stay verbatim in text.
_EMAIL_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False, default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

_PRIORITY_COLORS = {
    Priority.low: "#6e6e73",
    Priority.medium: "#0066cc",
    Priority.high: "#c93400",
    Priority.critical: "#d70015",
}


def email_subject(message: OutboundMessage) -> str:
    """`subject()` on one line: a line break in a title must not end (or inject) a mail header."""
    return " ".join(subject(message).split())


def notification_link(link_base: str | None, notification_id: str) -> str | None:
    """Where the person can read the notification's status: `{api_url}/v1/notifications/{id}`."""
    if not link_base:
        return None
    return f"{link_base.rstrip('/')}/v1/notifications/{notification_id}"


def preferences_link(link_base: str | None) -> str | None:
    """The preference center, the browser page's Preferences view: `{api_url}/#preferences`."""
    if not link_base:
        return None
    return f"{link_base.rstrip('/')}/#preferences"


def unsubscribe_headers(message: OutboundMessage) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe: `List-Unsubscribe` with the signed link, and `List-Unsubscribe-Post`
    saying a POST of `List-Unsubscribe=One-Click` there does it. None without a link (no answer secret)."""
    if not message.unsubscribe_url:
        return {}
    return {"List-Unsubscribe": f"<{message.unsubscribe_url}>", "List-Unsubscribe-Post": ONE_CLICK_POST}


def email_bodies(message: OutboundMessage, link: str | None, preferences: str | None = None) -> tuple[str, str]:
    """The (text, html) bodies of an email, the same for SendGrid, SMTP and the outbox."""
    n = message.notification
    context = {
        "subject": email_subject(message),
        "priority_label": n.priority.value.upper(),
        "priority_color": _PRIORITY_COLORS[n.priority],
        "title": n.title,
        "body": n.body,
        "agent_id": n.agent_id,
        "notification_id": n.notification_id,
        "metadata": [(str(key), _metadata_value(value)) for key, value in n.metadata.items()],
        "link": link,
        # A question: one signed, single-use link per action (none without HERALD_ANSWER_SECRET).
        "actions": [(a.label, message.action_urls[a.id]) for a in n.actions if a.id in message.action_urls],
        "asks": bool(n.actions),
        "respond_by": n.respond_by.isoformat() if n.respond_by else None,
        # The footer: the preference center, and the one-click link saying what it stops.
        "preferences": preferences,
        "unsubscribe": message.unsubscribe_url,
        "unsubscribe_stops": what_it_stops(scope_of(n), n.priority),
    }
    text = _EMAIL_TEMPLATES.get_template("email.txt.j2").render(context)
    html = _EMAIL_TEMPLATES.get_template("email.html.j2").render(context)
    return text, html


def _metadata_value(value: Any) -> str:
    """Strings as they are; anything else as compact JSON, so `true` and `3` read as the agent sent them."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def email_payload(
    message: OutboundMessage, sender: str, link: str | None = None, preferences: str | None = None
) -> dict[str, Any]:
    """A SendGrid v3 /mail/send body; SendGrid wants text/plain before text/html.

    The idempotency key rides in `personalizations[0].custom_args` (an object there; the top-level
    `custom_args` is a string in SendGrid's spec), which SendGrid returns on every event webhook of the message.
    """
    if not message.contact.email:
        raise ContactMissing("the user has no email address on file")
    n = message.notification
    text, html = email_bodies(message, link, preferences)
    name, address = split_sender(sender)
    personalization: dict[str, Any] = {
        "to": [{"email": message.contact.email}],
        "custom_args": {"idempotency_key": message.idempotency_key, "notification_id": n.notification_id},
    }
    payload: dict[str, Any] = {
        "personalizations": [personalization],
        "from": {"email": address or sender, **({"name": name} if name else {})},
        "subject": email_subject(message),
        "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
    }
    if headers := unsubscribe_headers(message):
        payload["headers"] = headers
    return payload


def sms_payload(message: OutboundMessage, sender: str | None, link: str | None = None) -> dict[str, Any]:
    """A Twilio Messages.create body: `[PRIORITY] title: body`, cut to two segments, the link kept whole."""
    if not message.contact.phone:
        raise ContactMissing("the user has no phone number on file")
    n = message.notification
    text = f"{subject(message)}: {n.body}" if n.body else subject(message)
    if n.actions:
        # A question keeps its reply prompt whole ("Reply 1 for Approve, 2 for Deny"): it matters more than the link.
        return {"To": message.contact.phone, "From": sender, "Body": fit_sms(text, sms_prompt(n.actions), 2)}
    return {"To": message.contact.phone, "From": sender, "Body": fit_sms(text, link, max_segments=2)}


def push_frame(message: OutboundMessage) -> dict[str, Any]:
    """The frame a connected client receives and acks by notification_id."""
    return {"type": "notification", **notification_fields(message)}


def webhook_body(message: OutboundMessage) -> dict[str, Any]:
    """A Standard Webhooks event body."""
    n = message.notification
    data = notification_fields(message)
    if message.respond_url:
        # POST {"action_id"} there ({"action_id", "text"} for an action with input text): signed, single-use
        data["respond_url"] = message.respond_url
    return {"type": "notification.created", "timestamp": n.created_at.isoformat(), "data": data}


def webhook_outbox_payload(message: OutboundMessage) -> dict[str, Any]:
    """The webhook as it would be posted: where to, its webhook-id, and its body."""
    if not message.contact.webhook_url:
        raise ContactMissing("the user has no webhook URL on file")
    return {"url": message.contact.webhook_url, "webhook-id": message.idempotency_key, "body": webhook_body(message)}


def notification_fields(message: OutboundMessage) -> dict[str, Any]:
    n = message.notification
    fields: dict[str, Any] = {
        "notification_id": n.notification_id,
        "agent_id": n.agent_id,
        "user_id": n.user_id,
        "title": n.title,
        "body": n.body,
        "priority": n.priority.value,
        "metadata": n.metadata,
        "created_at": n.created_at.isoformat(),
    }
    if n.actions:  # a question: the client shows buttons and answers with {"type": "respond", ...}
        fields["actions"] = [action.model_dump() for action in n.actions]
        fields["respond_by"] = n.respond_by.isoformat() if n.respond_by else None
    return fields
