"""The content key that makes a burst of the same notification reach a person once."""

from __future__ import annotations

import hashlib

from herald.models import AgentNotification


def content_key(notification: AgentNotification) -> str:
    """sha256 of `agent_id:title:user_id`, or of the agent's explicit dedup_key scoped to agent and user.

    An explicit key is scoped so that one agent's key never silences another agent or another person.
    """
    n = notification
    if n.dedup_key is not None:
        raw = _join("key", n.agent_id, n.recipient, n.dedup_key)
    else:
        raw = _join(n.agent_id, n.title, n.recipient)
    return hashlib.sha256(raw.encode()).hexdigest()


def own_key(kind: str, notification_id: str) -> str:
    """A dedup_key only this notification holds: it dedups against its own retries and nothing else.

    For notifications whose sameness something else decides: a rule's firing (its cooldown), a digest (its
    period), a test notification (the person asked for it).
    """
    return f"{kind}/{notification_id}"


def question_key(notification: AgentNotification) -> str:
    """A question's key: its content key and the action ids it offers. Only the same question asked again (same
    agent, title or dedup_key, user and choices) joins the first one's answer; a plain notification with the same
    title, or a question offering other choices, is a different thing to ask."""
    raw = _join("question", content_key(notification), *(action.id for action in notification.actions))
    return hashlib.sha256(raw.encode()).hexdigest()


def _join(*fields: str) -> str:
    """Join with `:`, escaping `\\` and `:` inside fields, so that `a:b` + `c` never equals `a` + `b:c`.

    Fields without either character join exactly as `agent_id:title:user_id`.
    """
    return ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields)
