"""The content key that makes a burst of the same notification reach a person once."""

from __future__ import annotations

import hashlib

from herald.models import AgentNotification


def content_key(notification: AgentNotification) -> str:
    """sha256 of `agent_id:title:user_id`, or of the agent's explicit dedup_key scoped to agent and user.

    An explicit key is scoped so that one agent's key never silences another agent or another person.
    """
    if notification.dedup_key is not None:
        raw = f"key:{notification.agent_id}:{notification.user_id}:{notification.dedup_key}"
    else:
        raw = f"{notification.agent_id}:{notification.title}:{notification.user_id}"
    return hashlib.sha256(raw.encode()).hexdigest()
