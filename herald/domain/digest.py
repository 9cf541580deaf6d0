"""The digest email: many low-priority notifications in one message, grouped by agent, newest first.

Pure, so the digest workflow can build it deterministically and tests need no Temporal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from herald.domain.dedup import own_key
from herald.models import (
    BODY_MAX_BYTES,
    AgentNotification,
    ChannelName,
    DigestItem,
    Priority,
)

DIGEST_AGENT = "herald-digest"
_ITEM_BODY_CHARS = 280


def digest_item(notification: AgentNotification) -> DigestItem:
    return DigestItem(
        notification_id=notification.notification_id,
        agent_id=notification.agent_id,
        title=notification.title,
        body=notification.body,
        priority=notification.priority,
        created_at=notification.created_at,
    )


def digest_title(items: list[DigestItem]) -> str:
    agents = len({i.agent_id for i in items})
    noun = "notification" if len(items) == 1 else "notifications"
    source = "1 agent" if agents == 1 else f"{agents} agents"
    return f"Your digest: {len(items)} {noun} from {source}"


def digest_body(items: Iterable[DigestItem], limit_bytes: int = BODY_MAX_BYTES) -> str:
    """One section per agent (the busiest first), its items newest first, each with time and priority."""
    by_agent: dict[str, list[DigestItem]] = defaultdict(list)
    for item in items:
        by_agent[item.agent_id].append(item)
    sections = sorted(by_agent.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines: list[str] = []
    for agent_id, agent_items in sections:
        lines.append(f"{agent_id} ({len(agent_items)})")
        for item in sorted(agent_items, key=lambda i: i.created_at, reverse=True):
            stamp = item.created_at.strftime("%Y-%m-%d %H:%M UTC")
            lines.append(f"  - [{item.priority.value}] {item.title} ({stamp})")
            if item.body:
                body = " ".join(item.body.split())
                lines.append(f"    {body[:_ITEM_BODY_CHARS]}{'…' if len(body) > _ITEM_BODY_CHARS else ''}")
        lines.append("")
    return _fit(lines, limit_bytes)


def _fit(lines: list[str], limit_bytes: int) -> str:
    """Keep whole lines under the limit; say how many were left out."""
    text = "\n".join(lines).rstrip()
    if len(text.encode()) <= limit_bytes:
        return text
    kept: list[str] = []
    size = 0
    for line in lines:
        size += len(line.encode()) + 1
        if size > limit_bytes - 100:
            break
        kept.append(line)
    return "\n".join(kept).rstrip() + f"\n\n… and {len(lines) - len(kept)} more lines, cut to fit one email"


def digest_notification(user_id: str, digest_id: str, items: list[DigestItem], now: datetime) -> AgentNotification:
    """The notification that carries a digest: one email, sent through the usual pipeline.

    It dedups only against itself (its own key): each period's digest is one email, and two periods with the
    same counts share a title but are different digests.
    """
    return AgentNotification(
        notification_id=digest_id,
        agent_id=DIGEST_AGENT,
        user_id=user_id,
        title=digest_title(items),
        body=digest_body(items),
        priority=Priority.medium,
        channels=[ChannelName.email],
        metadata={"digest_of": len(items)},
        created_at=now,
        dedup_key=own_key("digest", digest_id),
    )
