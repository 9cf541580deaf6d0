"""What the chat channels (Slack, Telegram) send: a message with one button per action, and the same message
edited at the question's end, its buttons replaced by what was decided.

Agent text is escaped for each provider's markup, so a title or body can never mention `@channel`, open a link
of its own or break out of the message's formatting. A button carries a short reference (the action's position
among the buttons), never the notification's content.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from herald.adapters.channels.base import OutboundMessage
from herald.domain.errors import ContactMissing
from herald.models import ACK_ACTION, Action, Contact, Priority

SEEN_LABEL = "Seen"
# Slack's limits (Block Kit): a header's plain text, a section's text, a button's text.
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_BUTTON_MAX = 75
# Telegram's: a message's text (after entity parsing), and a button's callback_data in bytes.
TELEGRAM_TEXT_MAX = 4096
TELEGRAM_BODY_MAX = 3500  # leaves the header, the title (200 at most), the link and the decision room
TELEGRAM_CALLBACK_DATA_MAX = 64
_PRIORITY_HEADER = {
    Priority.low: "Low priority",
    Priority.medium: "Medium priority",
    Priority.high: "High priority",
    Priority.critical: "Critical",
}


@dataclass(frozen=True)
class ChatContent:
    """What a chat message shows: the notification's words (re-read from the store when the message is edited)."""

    title: str
    body: str
    priority: Priority


@runtime_checkable
class EditableChannel(Protocol):
    """A channel whose delivered messages can be edited afterwards (Slack, Telegram)."""

    async def conclude(
        self, provider_message_id: str, content: ChatContent | None, decision: str, contact: Contact | None
    ) -> None:
        """Replace the message's buttons by `decision` (`contact`: the user's, for a provider id that keeps
        only a hash of where the message is); raise TransientDeliveryError to retry."""
        ...


def buttons(actions: Sequence[Action], priority: Priority) -> list[tuple[str, str]]:
    """(action id, label) of each button: the question's actions, then `Seen` (an ack) when the notification is
    critical or a question and its actions don't offer an ack already. The same list when the click comes back."""
    offered = [(action.id, action.label) for action in actions]
    if (actions or priority is Priority.critical) and all(a != ACK_ACTION for a, _ in offered):
        offered.append((ACK_ACTION, SEEN_LABEL))
    return offered


def reply_hint(actions: Sequence[Action], where: str) -> str | None:
    """What the message says of its one text action (`input: text`): a reply `where` answers it in words. None
    with no text action, or several (a reply then answers nothing)."""
    texts = [action for action in actions if action.takes_text]
    if len(texts) != 1:
        return None
    return f"To answer {texts[0].label} in your own words, reply {where}."


SLACK_REPLY_WHERE = "in this message's thread"
TELEGRAM_REPLY_WHERE = "to this message"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Slack -------------------------------------------------------------------------------------------------------

SLACK_ACTION_PREFIX = "herald:"


def slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as Slack documents: no `<!here>`, `<@U…>` or `<url|text>` from
    agent text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_unescape(text: str) -> str:
    """A person's message as they typed it: Slack sends `&`, `<` and `>` escaped in a message event's text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_blocks(
    content: ChatContent,
    link: str | None,
    *,
    notification_id: str,
    offered: list[tuple[str, str]] | None = None,
    decision: str | None = None,
    hint: str | None = None,
) -> list[dict[str, Any]]:
    """Block Kit: a header with the priority, the title and body as escaped mrkdwn, the link, then the buttons
    (each `herald:<action id>`, its value the notification id) and how to answer in words, or once decided, what
    was decided."""
    text = f"*{slack_escape(' '.join(content.title.split()))}*"
    if content.body:
        text += "\n" + slack_escape(content.body)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _PRIORITY_HEADER[content.priority]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SLACK_SECTION_MAX)}},
    ]
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in Herald>"}]})
    if decision is not None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(decision)}]})
    elif offered:
        blocks.append(
            {
                "type": "actions",
                "block_id": "herald_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"{SLACK_ACTION_PREFIX}{action_id}",
                        "text": {"type": "plain_text", "text": _cut(label, SLACK_BUTTON_MAX)},
                        "value": notification_id,
                        **({"style": "primary"} if index == 0 and action_id != ACK_ACTION else {}),
                    }
                    for index, (action_id, label) in enumerate(offered)
                ],
            }
        )
    if decision is None and hint:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(slack_escape(hint), 300)}]})
    return blocks


def content_of_message(message: OutboundMessage) -> ChatContent:
    n = message.notification
    return ChatContent(n.title, n.body, n.priority)


def slack_payload(message: OutboundMessage, link: str | None) -> dict[str, Any]:
    """A chat.postMessage body: a direct message to the member (channel = their member id)."""
    if not message.contact.slack_user_id:
        raise ContactMissing("the user has no Slack member id on file")
    n = message.notification
    content = content_of_message(message)
    return {
        "channel": message.contact.slack_user_id,
        # The notification's own text (what Slack shows in the alert), escaped like the blocks.
        "text": _cut(slack_escape(f"[{n.priority.value.upper()}] {' '.join(n.title.split())}"), SLACK_HEADER_MAX),
        "blocks": slack_blocks(
            content,
            link,
            notification_id=n.notification_id,
            offered=buttons(n.actions, n.priority),
            hint=reply_hint(n.actions, SLACK_REPLY_WHERE),
        ),
        "unfurl_links": False,
        "unfurl_media": False,
    }


# --- Telegram ----------------------------------------------------------------------------------------------------


def telegram_text(content: ChatContent, link: str | None, decision: str | None = None, hint: str | None = None) -> str:
    """The message in Telegram's HTML parse mode, every agent text escaped; `hint` (how to answer in words) until
    it is decided."""
    # The limit counts the text as shown (after the markup is parsed): cutting the body before escaping suffices.
    parts = [f"<b>{html.escape(_PRIORITY_HEADER[content.priority])}</b>", f"<b>{html.escape(content.title)}</b>"]
    if content.body:
        parts.append(html.escape(_cut(content.body, TELEGRAM_BODY_MAX)))
    if link:
        parts.append(f'<a href="{html.escape(link, quote=True)}">Open in Herald</a>')
    if decision is not None:
        parts.append(f"<i>{html.escape(decision)}</i>")
    elif hint:
        parts.append(f"<i>{html.escape(_cut(hint, 300))}</i>")
    return "\n".join(parts)


def telegram_callback_data(index: int) -> str:
    """A button's callback_data: its position among the buttons (the message itself names the notification)."""
    data = f"h:{index}"
    assert len(data.encode()) <= TELEGRAM_CALLBACK_DATA_MAX
    return data


def telegram_button_index(data: object) -> int | None:
    """The position a callback_data names, or None when it is not one of Herald's."""
    if not isinstance(data, str) or not data.startswith("h:") or not data[2:].isdigit() or len(data) > 8:
        return None
    return int(data[2:])


def telegram_payload(message: OutboundMessage, link: str | None) -> dict[str, Any]:
    """A sendMessage body with an inline keyboard of the buttons, one a row."""
    chat_id = message.contact.telegram_chat_id
    if chat_id is None:
        raise ContactMissing("the user has no Telegram chat bound (herald telegram link)")
    n = message.notification
    payload: dict[str, Any] = {
        "chat_id": chat_id,
        "text": telegram_text(content_of_message(message), link, hint=reply_hint(n.actions, TELEGRAM_REPLY_WHERE)),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    offered = buttons(n.actions, n.priority)
    if offered:
        payload["reply_markup"] = {
            "inline_keyboard": [
                [{"text": label, "callback_data": telegram_callback_data(i)}] for i, (_, label) in enumerate(offered)
            ]
        }
    return payload
