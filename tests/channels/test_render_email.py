"""The email bodies and the SendGrid payload: the same text and HTML for SendGrid, SMTP and the outbox."""

from __future__ import annotations

import pytest

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.render import email_bodies, email_payload, email_subject, notification_link
from herald.domain.errors import ContactMissing
from herald.models import AgentNotification, ChannelName, Contact, Priority

LINK = "https://herald.example.com/v1/notifications/n-123"


def outbound(email: str | None = "alice@example.com", **fields: object) -> OutboundMessage:
    values: dict[str, object] = {
        "notification_id": "n-123",
        "agent_id": "deploy-bot",
        "user_id": "alice",
        "title": "Deploy failed",
        "body": "The build broke on main.\nSee the log.",
        "priority": Priority.critical,
        "metadata": {"service": "api", "attempt": 3, "green": False, "tags": ["a", "b"]},
    }
    values.update(fields)
    notification = AgentNotification.model_validate(values)
    return OutboundMessage(notification, ChannelName.email, f"{notification.workflow_id}/email", Contact(email=email))


def test_text_body_has_every_part() -> None:
    text, _ = email_bodies(outbound(), LINK)
    assert text.startswith("[CRITICAL] Deploy failed\n")
    assert "The build broke on main.\nSee the log." in text
    assert "  service: api\n" in text
    assert "  attempt: 3\n" in text
    assert "  green: false\n" in text
    assert '  tags: ["a", "b"]\n' in text
    assert f"View this notification: {LINK}\n" in text
    assert "Sent by Herald on behalf of agent deploy-bot." in text
    assert text.endswith("Notification n-123\n")


def test_html_body_has_every_part() -> None:
    _, html = email_bodies(outbound(), LINK)
    assert html.startswith("<!DOCTYPE html>")
    assert ">CRITICAL<" in html
    assert ">Deploy failed</h1>" in html
    assert "The build broke on main.\nSee the log." in html
    assert ">service</th>" in html and ">api</td>" in html
    assert "<table" in html and ">false</td>" in html
    assert f'<a href="{LINK}"' in html
    assert "Sent by Herald on behalf of agent deploy-bot." in html


def test_html_escapes_agent_text_and_text_keeps_it_verbatim() -> None:
    message = outbound(
        title='<script>alert("x")</script>',
        body="<b>bold</b> & <img src=x onerror=alert(1)>",
        metadata={"<th>": "<td>", "n": {"html": "<i>"}},
    )
    text, html = email_bodies(message, LINK)
    for raw in ('<script>alert("x")</script>', "<b>bold</b> & <img src=x onerror=alert(1)>", "  <th>: <td>\n"):
        assert raw in text
    for markup in ("<script", "<b>", "<img", "<i>", "<th>&", "<td>&"):
        assert markup not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html
    assert ">&lt;th&gt;</th>" in html and ">&lt;td&gt;</td>" in html
    assert "{&#34;html&#34;: &#34;&lt;i&gt;&#34;}" in html


def test_without_a_link_or_body_or_metadata_those_parts_are_left_out() -> None:
    text, html = email_bodies(outbound(body="", metadata={}), None)
    assert text == "[CRITICAL] Deploy failed\n\n--\nSent by Herald on behalf of agent deploy-bot.\nNotification n-123\n"
    assert "<a " not in html and "<table" not in html and "white-space:pre-wrap" not in html


def test_email_payload_carries_text_then_html_and_the_idempotency_key() -> None:
    message = outbound()
    payload = email_payload(message, "herald@example.com", LINK)
    text, html = email_bodies(message, LINK)
    assert payload == {
        "personalizations": [
            {
                "to": [{"email": "alice@example.com"}],
                "custom_args": {"idempotency_key": "notification/n-123/email", "notification_id": "n-123"},
            }
        ],
        "from": {"email": "herald@example.com"},
        "subject": "[CRITICAL] Deploy failed",
        "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
    }


def test_email_payload_link_is_optional() -> None:
    payload = email_payload(outbound(), "herald@example.com")
    assert "View this notification" not in payload["content"][0]["value"]


def test_email_payload_needs_an_address() -> None:
    with pytest.raises(ContactMissing):
        email_payload(outbound(email=None), "herald@example.com")


def test_email_subject_keeps_a_title_on_one_line() -> None:
    assert email_subject(outbound(title="one\r\ntwo\nthree")) == "[CRITICAL] one two three"
    assert email_subject(outbound(title="plain", priority=Priority.low)) == "[LOW] plain"


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://herald.example.com", LINK),
        ("https://herald.example.com/", LINK),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/notifications/n-123"),
        (None, None),
        ("", None),
    ],
)
def test_notification_link(base: str | None, expected: str | None) -> None:
    assert notification_link(base, "n-123") == expected
